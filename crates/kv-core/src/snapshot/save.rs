//! Saving: the entries of the selected collections as snapshot lines, streamed scan page by
//! scan page, so a collection is never held in memory.

use std::io::{BufWriter, Write};
use std::path::Path;

use futures_util::StreamExt;

use super::atomic_file::AtomicFile;
use super::report::Reporter;
use super::{SaveOptions, Summary, io_error, line, source};
use crate::{KvStore, Result};

/// Writes every entry of the selected collections to `out` as snapshot lines (see the
/// [module docs](super) for the format), and flushes it.
///
/// Writes are buffered here; `out` is a blocking [`std::io::Write`] (a file, a `Vec`,
/// stdout), written between the store's scan pages. Pass `&mut w` to keep `w`. Collections
/// are read one after the other with paged scans, so the snapshot of a store that others
/// write meanwhile is consistent per entry, not as a whole.
///
/// # Errors
///
/// The store's error if a scan fails; an [`ErrorKind::Backend`](crate::ErrorKind::Backend)
/// error with the [`std::io::Error`] as its source if `out` fails. What was written before
/// stays written.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// use kv_core::KvStoreExt;
/// use kv_core::snapshot::{self, SaveOptions};
///
/// let store = kv_store_memory::MemoryStore::new();
/// store.put("users", "alice", &serde_json::json!({"age": 30})).await?;
/// store.put_bytes("blobs", "logo", vec![0x89_u8, 0x50]).await?;
///
/// let mut out = Vec::new();
/// let summary = snapshot::save(&store, &mut out, &SaveOptions::default()).await?;
/// assert_eq!((summary.entries, summary.collections), (2, 2));
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "{\"collection\":\"blobs\",\"key\":\"logo\",\"value_base64\":\"iVA=\",\"expires_at\":null}\n\
///      {\"collection\":\"users\",\"key\":\"alice\",\"value\":{\"age\":30},\"expires_at\":null}\n"
/// );
/// # Ok(()) }
/// ```
pub async fn save<S: KvStore, W: Write>(store: &S, out: W, opts: &SaveOptions) -> Result<Summary> {
    write_snapshot(store, out, opts, "the snapshot").await
}

/// Saves to a file, atomically: the snapshot is written to a temporary file next to `path`
/// and renamed over it at the end, so `path` is either the old file or the complete
/// snapshot, never half of one. A new file is readable by its owner only (values may be
/// secrets); a file that is replaced keeps its permissions. If anything fails, or the
/// future is dropped, the temporary file is removed.
///
/// The file is written with blocking calls, like [`save`].
///
/// # Errors
///
/// As [`save`]; the messages name `path`.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// use kv_core::KvStoreExt;
/// use kv_core::snapshot::{self, LoadOptions, SaveOptions};
///
/// let store = kv_store_memory::MemoryStore::new();
/// store.put("users", "alice", &30).await?;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("users.jsonl");
/// snapshot::save_to_path(&store, &path, &SaveOptions::default()).await?;
///
/// let restored = kv_store_memory::MemoryStore::new();
/// snapshot::load_from_path(&restored, &path, &LoadOptions::default()).await?;
/// assert_eq!(restored.get::<u32>("users", "alice").await?, Some(30));
/// # Ok(()) }
/// ```
pub async fn save_to_path<S: KvStore>(
    store: &S,
    path: impl AsRef<Path>,
    opts: &SaveOptions,
) -> Result<Summary> {
    let path = path.as_ref();
    let mut file = AtomicFile::create(path)?;
    let target = path.display().to_string();
    let summary = write_snapshot(store, file.file(), opts, &target).await?;
    file.commit()?;
    Ok(summary)
}

/// [`save`], with `target` naming what `out` is in error messages.
async fn write_snapshot<S: KvStore, W: Write>(
    store: &S,
    out: W,
    opts: &SaveOptions,
    target: &str,
) -> Result<Summary> {
    let collections = source::collections(store, opts.collections.as_deref()).await?;
    let total = source::total(store, &collections, opts.total).await?;
    let mut report = Reporter::new(opts.progress.clone(), total);
    let write_error = |e| io_error(format!("cannot write {target}"), e);
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut buf = Vec::with_capacity(256);
    let mut entries = std::pin::pin!(source::entries(store, &collections, opts.batch_size));
    while let Some(item) = entries.next().await {
        let (collection, key, entry) = item?;
        buf.clear();
        line::write(&mut buf, collection, &key, &entry.value, entry.expires_at);
        out.write_all(&buf).map_err(write_error)?;
        report.entry(collection);
    }
    out.flush().map_err(write_error)?;
    Ok(Summary {
        entries: report.done(),
        collections: collections.len() as u64,
        ..Summary::default()
    })
}
