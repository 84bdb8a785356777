//! The store: one RocksDB directory, owned by one worker thread.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kv_core::Timestamp;
use kv_core::envelope;
use kv_core::{Capability, Error, ErrorKind, Operation, Result, StoreInfo};
use rocksdb::compaction_filter::Decision;
use rocksdb::{DB, Options, WriteBatch, WriteOptions};

use crate::config::{RocksDbConfig, RocksDbStoreBuilder};
use kv_engine::keys::DATA_TAG;
use kv_engine::{Core, Engine, Visit, WriteOp};

const STORE: &str = crate::SCHEME;

/// A durable key-value store in one RocksDB directory. Cloning is
/// cheap and shares the database.
///
/// Every collection is a contiguous key range of the one database, every value the kv
/// envelope (expiry, creation time, version) followed by the raw value; see
/// [`format`](crate::format). Every write is one RocksDB `WriteBatch`, written to the log and
/// synced before it returns (unless opened with `sync=false`).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_rocksdb::RocksDbStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = RocksDbStore::open_path(dir.path().join("kv"))?;
/// store.put("ages", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("ages", "alice").await?, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct RocksDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: RocksDbConfig,
    core: Core<Rdb>,
}

impl fmt::Debug for RocksDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbStore")
            .field("path", &self.inner.config.path)
            .field("sync", &self.inner.config.sync)
            .field("default_collection", &self.inner.info.default_collection)
            .finish()
    }
}

impl RocksDbStore {
    /// Opens (or creates) the store of a `rocksdb://PATH` URL (see
    /// [`RocksDbConfig::from_url`]). The directory is created if missing.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL or a path that cannot hold a database;
    /// [`ErrorKind::Unavailable`] (not temporary) if another process — or another open store
    /// of this process — has the database open (RocksDB's `LOCK` file); [`ErrorKind::Corrupt`]
    /// for a damaged database.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("rocksdb://{}", dir.path().join("kv").display());
    /// let store = kv_store_rocksdb::RocksDbStore::open(&url)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = RocksDbConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the database in directory `path` with the default settings.
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(RocksDbConfig::new(path))
    }

    /// A builder for the database in directory `path`.
    pub fn builder(path: impl Into<PathBuf>) -> RocksDbStoreBuilder {
        RocksDbStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: RocksDbConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let path = config.path.clone();
        let sync = config.sync;
        let core = Core::open(STORE, move || Rdb::open(path, sync)).map_err(open_context)?;
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            durable: config.sync,
            shared: false,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        Ok(RocksDbStore {
            inner: Arc::new(Inner { info, config, core }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_rocksdb::RocksDbStore::open_path(dir.path().join("kv"))?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &RocksDbConfig {
        &self.inner.config
    }

    /// Stores `raw` as the value of `(collection, key)` exactly as given, without the kv
    /// envelope — for tools and tests (a later read of it reports [`ErrorKind::Corrupt`] unless
    /// `raw` is a valid envelope). An empty collection means the default collection.
    pub fn put_raw(&self, collection: &str, key: &str, raw: Vec<u8>) -> Result<()> {
        let c = self.inner.info.resolve(collection);
        self.inner.core.put_raw(c, key, raw)
    }
}

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

// ----- the engine -----

/// The RocksDB database, on the worker thread.
struct Rdb {
    /// Shared with the [`Engine::reader`] as a `Weak`, so closing still drops the database.
    db: Arc<DB>,
    write_opts: WriteOptions,
}

fn rdb_err(e: rocksdb::Error) -> Error {
    let kind = match e.kind() {
        rocksdb::ErrorKind::Corruption => ErrorKind::Corrupt,
        rocksdb::ErrorKind::Busy | rocksdb::ErrorKind::TimedOut | rocksdb::ErrorKind::TryAgain => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("rocksdb: {e}"))
}

/// RocksDB's message when the `LOCK` file is held: `IO error: While lock file: PATH/LOCK:
/// Resource temporarily unavailable`.
fn is_lock_error(e: &rocksdb::Error) -> bool {
    let msg = e.to_string();
    msg.contains("lock file") || msg.contains("/LOCK")
}

/// The compaction filter: drops entries whose kv envelope says they have expired. Keys that
/// are not data keys, and values that are not envelopes, are kept. RocksDB turns a removal
/// into a deletion marker, so an older version of the key never reappears.
fn drop_expired(_level: u32, key: &[u8], value: &[u8]) -> Decision {
    let expired = key.first() == Some(&DATA_TAG)
        && envelope::decode_meta(value).is_ok_and(|(m, _)| m.is_expired_at(Timestamp::now()));
    if expired {
        Decision::Remove
    } else {
        Decision::Keep
    }
}

impl Rdb {
    fn open(dir: PathBuf, sync: bool) -> Result<Self> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "cannot open {}: its parent directory does not exist",
                    dir.display()
                ),
            ));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("cannot open {}: not a directory", dir.display()),
            ));
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compaction_filter("kv-drop-expired", drop_expired);
        let db = DB::open(&opts, &dir).map_err(|e| {
            if is_lock_error(&e) {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{} is locked by another process (or by another open store in this process): {e}",
                        dir.display()
                    ),
                )
            } else if e.kind() == rocksdb::ErrorKind::Corruption {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("cannot open {}: damaged database: {e}", dir.display()),
                )
            } else {
                Error::new(
                    ErrorKind::Config,
                    format!("cannot open {} as a RocksDB database: {e}", dir.display()),
                )
            }
        })?;
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(sync);
        Ok(Rdb {
            db: Arc::new(db),
            write_opts,
        })
    }
}

impl Engine for Rdb {
    const ORDERED: bool = true;

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key).map_err(rdb_err)
    }

    fn write(&mut self, batch: Vec<WriteOp>) -> Result<()> {
        let mut wb = WriteBatch::default();
        for (k, v) in &batch {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        self.db.write_opt(wb, &self.write_opts).map_err(rdb_err)
    }

    fn range(&mut self, start: &[u8], end: &[u8], visit: Visit<'_>) -> Result<()> {
        let mut it = self.db.raw_iterator();
        it.seek(start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if k >= end || !visit(k, v)? {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(rdb_err)
    }

    fn close(&mut self) -> Result<()> {
        // Persist the memtable, so a reopen has no log to replay; the handle itself is dropped
        // (and the LOCK released) by the caller.
        self.db.flush().map_err(rdb_err)
    }

    /// RocksDB's handle is thread-safe: gets read it from the caller's thread (a memtable or
    /// block-cache hit takes ~2.7 µs; the worker round trip doubled that).
    fn reader(&self) -> Option<kv_engine::Reader> {
        let db = Arc::downgrade(&self.db);
        Some(Arc::new(move |key: &[u8]| {
            let db = db.upgrade()?;
            Some(db.get(key).map_err(rdb_err))
        }))
    }
}

// ----- the trait -----

kv_engine::impl_kv_store!(RocksDbStore, info: inner.info, core: inner.core);

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::envelope::Meta;

    #[test]
    fn compaction_drops_expired_entries_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Rdb::open(dir.path().join("db"), false).unwrap();
        let past = Meta {
            expires_at: Some(Timestamp::from_unix_micros(1)),
            ..Meta::default()
        };
        let expired = envelope::encode(&past, b"old");
        let live = envelope::encode(&Meta::default(), b"live");
        let k = |key: &str| kv_engine::keys::data_key("c", key);
        db.write(vec![
            (k("expired"), Some(expired.clone())),
            (k("live"), Some(live.clone())),
            (k("corrupt"), Some(b"not an envelope".to_vec())),
            // Not a data key: kept whatever it holds.
            (b"\x00other".to_vec(), Some(expired)),
        ])
        .unwrap();
        db.db.compact_range::<&[u8], &[u8]>(None, None);
        assert_eq!(db.get(&k("expired")).unwrap(), None);
        assert_eq!(db.get(&k("live")).unwrap(), Some(live));
        assert!(db.get(&k("corrupt")).unwrap().is_some());
        assert!(db.get(b"\x00other").unwrap().is_some());
    }
}
