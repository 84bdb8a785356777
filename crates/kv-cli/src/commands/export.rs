//! `kv export`: every entry as JSON Lines (see [`crate::jsonl`]), streamed with scans so a
//! collection is never held in memory.

use std::io::{IsTerminal, Write};
use std::path::Path;

use futures_util::StreamExt;
use kv::{KvStore, KvStoreExt, ScanOptions, Store};

use super::{Out, plural};
use crate::cli::ExportArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::{jsonl, progress};

/// `kv export [--collection C] [-o FILE]`.
pub async fn run(store: &Store, args: ExportArgs, out: &mut Out) -> CliResult {
    let collections = match &args.collection {
        Some(c) => vec![store.info().resolve(c).to_owned()],
        None => {
            let mut all = store.collections().await?;
            all.sort_unstable();
            all
        }
    };
    let Some(path) = args.output else {
        // A spinner on the terminal would be drawn over the output itself.
        let show = !std::io::stdout().is_terminal();
        let n = write_all(store, &collections, out, &stdout_error, show).await?;
        out.flush().map_err(stdout_error)?;
        summary(n, collections.len(), None);
        return Ok(());
    };
    // Write a temporary file next to the target and rename it at the end: the target is
    // either the old file or the complete export, never half of one. The temporary file is
    // removed if anything fails.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".kv-export-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| CliError::file("cannot create a file in", dir, &e))?;
    let mut file = std::io::BufWriter::new(tmp);
    let file_error = |e: std::io::Error| CliError::file("cannot write", &path, &e);
    let n = write_all(store, &collections, &mut file, &file_error, true).await?;
    let tmp = file
        .into_inner()
        .map_err(|e| CliError::file("cannot write", &path, e.error()))?;
    // The temporary file is private (0600); a file being replaced keeps its permissions.
    if let Ok(meta) = std::fs::metadata(&path) {
        let _ = tmp.as_file().set_permissions(meta.permissions());
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| CliError::file("cannot write", &path, &e))?;
    tmp.persist(&path)
        .map_err(|e| CliError::file("cannot write", &path, &e.error))?;
    summary(n, collections.len(), Some(&path));
    Ok(())
}

/// Writes every entry of the collections; returns how many.
async fn write_all(
    store: &Store,
    collections: &[String],
    out: &mut impl Write,
    io_error: &dyn Fn(std::io::Error) -> CliError,
    show_progress: bool,
) -> CliResult<u64> {
    let pb = if show_progress {
        progress::counter("export")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut line = Vec::with_capacity(256);
    let mut n = 0u64;
    for collection in collections {
        pb.set_message(collection.clone());
        let mut items = std::pin::pin!(store.scan(collection, ScanOptions::default()));
        while let Some(item) = items.next().await {
            let item = item?;
            let entry = item.entry.ok_or_else(|| {
                CliError::new(format!(
                    "the {} store returned a scan item without its value",
                    store.info().kind
                ))
            })?;
            line.clear();
            jsonl::write_record(
                &mut line,
                collection,
                &item.key,
                &entry.value,
                entry.expires_at,
            );
            out.write_all(&line).map_err(io_error)?;
            n += 1;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    Ok(n)
}

fn summary(entries: u64, collections: usize, path: Option<&Path>) {
    let to = path.map_or_else(String::new, |p| format!(" to {}", p.display()));
    eprintln!(
        "kv: exported {entries} {} from {collections} {}{to}",
        plural(entries, "entry", "entries"),
        plural(collections as u64, "collection", "collections"),
    );
}
