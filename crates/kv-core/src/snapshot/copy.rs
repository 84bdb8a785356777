//! Copying: the entries of one store written to another, scan page by scan page into
//! batches, without the text of a snapshot in between.

use futures_util::StreamExt;

use super::batch::BatchWriter;
use super::report::Reporter;
use super::{CopyOptions, Summary, source};
use crate::{KvStore, Result};

/// Copies every entry of the selected collections of `src` into `dst` (which may be another
/// kind of store), keeping each entry's remaining lifetime unless told otherwise (see
/// [`CopyOptions`]). Entries come from paged scans and go out in `put_many` batches; nothing
/// is held in memory beyond a batch.
///
/// # Errors
///
/// The source's error if a scan fails, the destination's if a write fails. What was
/// written before stays written.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// use std::time::Duration;
/// use kv_core::KvStoreExt;
/// use kv_core::snapshot::{self, CopyOptions};
///
/// let src = kv_store_memory::MemoryStore::new();
/// src.put("users", "alice", &30).await?;
/// src.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(60)).await?;
///
/// let dst = kv_store_memory::MemoryStore::new();
/// let summary = snapshot::copy(&src, &dst, &CopyOptions::default().with_total(true)).await?;
/// assert_eq!((summary.entries, summary.collections), (2, 2));
/// assert!(dst.ttl("sessions", "s1").await?.unwrap().remaining().is_some());
/// # Ok(()) }
/// ```
pub async fn copy<S: KvStore, D: KvStore>(src: &S, dst: &D, opts: &CopyOptions) -> Result<Summary> {
    let collections = source::collections(src, opts.collections.as_deref()).await?;
    let total = source::total(src, &collections, opts.total).await?;
    let mut report = Reporter::new(opts.progress.clone(), total);
    let mut writer = BatchWriter::new(dst, opts.batch_size, opts.expiry, opts.mode);
    let mut entries = std::pin::pin!(source::entries(src, &collections, opts.batch_size));
    while let Some(item) = entries.next().await {
        let (collection, key, entry) = item?;
        writer
            .push(collection.to_owned(), key, entry.value, entry.expires_at)
            .await?;
        report.entry(collection);
    }
    let written = writer.finish().await?;
    Ok(written.summary(collections.len() as u64))
}
