//! `kv copy SRC DST`: every collection of one store into another, streamed page by page and
//! written in batches, keeping each entry's remaining lifetime.

use futures_util::StreamExt;
use kv::url::redact;
use kv::{KvStore, KvStoreExt, ScanOptions};

use super::plural;
use crate::batch::{BATCH_SIZE, BatchWriter};
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
    let mut collections = src.collections().await?;
    collections.sort_unstable();

    // The total costs one keys-only scan per collection: only pay it for a visible bar.
    let pb = if progress::enabled() {
        let mut total = 0;
        for c in &collections {
            total += src.len(c).await?;
        }
        progress::bar(total, "copy")
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut writer = BatchWriter::new(&dst);
    for collection in &collections {
        pb.set_message(collection.clone());
        let opts = ScanOptions::default().with_page_size(BATCH_SIZE);
        let mut items = std::pin::pin!(src.scan(collection, opts));
        while let Some(item) = items.next().await {
            let item = item?;
            let entry = item.entry.ok_or_else(|| {
                CliError::new(format!(
                    "the {} store returned a scan item without its value",
                    src.info().kind
                ))
            })?;
            writer
                .push(collection.clone(), item.key, entry.value, entry.expires_at)
                .await?;
            pb.inc(1);
        }
    }
    let done = writer.finish().await?;
    pb.finish_and_clear();
    dst.close().await?;
    src.close().await?;
    let skipped = if done.expired > 0 {
        format!(", skipped {} expired", done.expired)
    } else {
        String::new()
    };
    eprintln!(
        "kv: copied {} {} in {} {} from {} to {}{skipped}",
        done.written,
        plural(done.written, "entry", "entries"),
        collections.len(),
        plural(collections.len() as u64, "collection", "collections"),
        redact(&args.src),
        redact(&args.dst),
    );
    Ok(())
}
