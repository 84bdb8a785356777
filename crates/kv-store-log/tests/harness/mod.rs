//! The conformance harness of the log store: every store the suite opens is a new log file in
//! its own temporary directory, removed when the suite is done with the store (the last handle
//! drops the directory).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_log::{LogStore, LogStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `LogStore`
/// behind it by its location (its file path, unique per store).
static STORES: Registry<LogStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(LogStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

async fn open(fsync: bool) -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-log-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = LogStore::builder(dir.path().join("kv.log"))
        .fsync(fsync)
        .open()?;
    Ok(STORES.register(store, Arc::new(dir)))
}

/// Overwrites the entry's line in the file (all but its newline) with bytes that are not a
/// log record, as a disk error would.
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let (log, _dir) = lookup(&store)?;
    let (offset, len) = log
        .entry_location(&collection, &key)?
        .ok_or_else(|| Error::new(ErrorKind::Backend, "no such entry to corrupt"))?;
    let garbage: Vec<u8> = (0..len - 1)
        .map(|i| b"\xde\xad\xbe\xef"[i as usize % 4])
        .collect();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(log.path())
        .map_err(Error::from)?;
    file.write_all_at(&garbage, offset).map_err(Error::from)
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (disk, dir) = lookup(&store)?;
    store.close().await?;
    let again = LogStoreBuilder::from_config(disk.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

/// The whole suite against stores opened with `fsync`, with the corrupt and reopen hooks.
pub fn suite(name: &str, fsync: bool) -> Suite {
    Suite::new(name, move || open(fsync))
        .corrupt(corrupt)
        .reopen(reopen)
}
