//! `kv copy SRC DST`: every collection of one store into another, by
//! [`kv::snapshot::copy`] (streamed page by page, written in batches, remaining lifetimes
//! kept).

use kv::KvStore;
use kv::snapshot::{self, CopyOptions};
use kv::url::redact;

use super::plural;
use crate::cli::CopyArgs;
use crate::error::{CliError, CliResult};
use crate::{progress, selection};

/// `kv copy SRC_URL DST_URL`.
pub async fn run(args: CopyArgs) -> CliResult {
    if args.src == args.dst {
        return Err(CliError::new(format!(
            "source and destination are the same store ({})",
            redact(&args.src)
        )));
    }
    let src = selection::open(&args.src).await?;
    let dst = selection::open(&args.dst).await?;

    // The total costs one keys-only scan per collection: only pay it for a visible bar.
    let mut opts = CopyOptions::default().with_total(progress::enabled());
    let pb = progress::bar(0, "copy");
    if let Some(follow) = progress::follow(&pb) {
        opts = opts.with_progress(follow);
    }
    let copied = snapshot::copy(&src, &dst, &opts).await;
    pb.finish_and_clear();
    let done = copied?;
    dst.close().await?;
    src.close().await?;
    let skipped = if done.expired > 0 {
        format!(", skipped {} expired", done.expired)
    } else {
        String::new()
    };
    eprintln!(
        "kv: copied {} {} in {} {} from {} to {}{skipped}",
        done.entries,
        plural(done.entries, "entry", "entries"),
        done.collections,
        plural(done.collections, "collection", "collections"),
        redact(&args.src),
        redact(&args.dst),
    );
    Ok(())
}
