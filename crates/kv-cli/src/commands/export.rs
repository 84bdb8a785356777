//! `kv export`: every entry as JSON Lines, written by [`kv::snapshot::save`] (whose docs
//! describe the format) to stdout, or atomically to a file by
//! [`kv::snapshot::save_to_path`].

use std::io::{IsTerminal, Write};
use std::path::Path;

use kv::Store;
use kv::snapshot::{self, SaveOptions};

use super::{Out, plural};
use crate::cli::ExportArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::progress;

/// `kv export [--collection C] [-o FILE]`.
pub async fn run(store: &Store, args: ExportArgs, out: &mut Out) -> CliResult {
    let mut opts = SaveOptions::default();
    if let Some(c) = args.collection {
        opts = opts.with_collection(c);
    }
    // A spinner on the terminal would be drawn over the output itself.
    let pb = if args.output.is_none() && std::io::stdout().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        progress::counter("export")
    };
    if let Some(follow) = progress::follow(&pb) {
        opts = opts.with_progress(follow);
    }
    let saved = match &args.output {
        None => snapshot::save(store, &mut *out, &opts).await,
        // A temporary file renamed at the end: the target is either the old file or the
        // complete export, never half of one (the temporary file is removed on failure and
        // on Ctrl-C, which drops this future).
        Some(path) => snapshot::save_to_path(store, path, &opts).await,
    };
    pb.finish_and_clear();
    let saved = saved.map_err(CliError::snapshot)?;
    out.flush().map_err(stdout_error)?;
    summary(saved.entries, saved.collections, args.output.as_deref());
    Ok(())
}

fn summary(entries: u64, collections: u64, path: Option<&Path>) {
    let to = path.map_or_else(String::new, |p| format!(" to {}", p.display()));
    eprintln!(
        "kv: exported {entries} {} from {collections} {}{to}",
        plural(entries, "entry", "entries"),
        plural(collections, "collection", "collections"),
    );
}
