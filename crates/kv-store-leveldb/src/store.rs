//! The store: one LevelDB directory, owned by one worker thread.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Capability, Error, ErrorKind, Operation, Result, StoreInfo};
use rusty_leveldb::{DB, LdbIterator, Options, Status, StatusCode, WriteBatch};

use crate::config::{LevelDbConfig, LevelDbStoreBuilder};
use kv_engine::{Core, Engine, Visit, WriteOp};

const STORE: &str = crate::SCHEME;

/// A durable key-value store in one LevelDB directory (pure Rust: rusty-leveldb). Cloning is
/// cheap and shares the database.
///
/// Every collection is a contiguous key range of the one database, every value the kv
/// envelope (expiry, creation time, version) followed by the raw value; see
/// [`format`](crate::format). Every write is one LevelDB `WriteBatch`, written to the log and
/// synced before it returns (unless opened with `sync=false`).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_leveldb::LevelDbStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = LevelDbStore::open_path(dir.path().join("kv"))?;
/// store.put("ages", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("ages", "alice").await?, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct LevelDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: LevelDbConfig,
    core: Core<Ldb>,
}

impl fmt::Debug for LevelDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LevelDbStore")
            .field("path", &self.inner.config.path)
            .field("sync", &self.inner.config.sync)
            .field("default_collection", &self.inner.info.default_collection)
            .finish()
    }
}

impl LevelDbStore {
    /// Opens (or creates) the store of a `leveldb://PATH` URL (see
    /// [`LevelDbConfig::from_url`]). The directory is created if missing.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL or a path that cannot hold a database;
    /// [`ErrorKind::Unavailable`] (not temporary) if another process — or another open store
    /// of this process — has the database open (LevelDB's `LOCK` file); [`ErrorKind::Corrupt`]
    /// for a damaged database.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("leveldb://{}", dir.path().join("kv").display());
    /// let store = kv_store_leveldb::LevelDbStore::open(&url)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = LevelDbConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the database in directory `path` with the default settings.
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(LevelDbConfig::new(path))
    }

    /// A builder for the database in directory `path`.
    pub fn builder(path: impl Into<PathBuf>) -> LevelDbStoreBuilder {
        LevelDbStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: LevelDbConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let path = config.path.clone();
        let sync = config.sync;
        let core = Core::open(STORE, move || Ldb::open(path, sync)).map_err(open_context)?;
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
        Ok(LevelDbStore {
            inner: Arc::new(Inner { info, config, core }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_leveldb::LevelDbStore::open_path(dir.path().join("kv"))?.sync();
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
    pub fn config(&self) -> &LevelDbConfig {
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

/// rusty-leveldb's database, on the worker thread.
struct Ldb {
    db: DB,
    dir: PathBuf,
    sync: bool,
}

fn ldb_err(e: Status) -> Error {
    let kind = match e.code {
        StatusCode::Corruption => ErrorKind::Corrupt,
        StatusCode::LockError => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("leveldb: {e}"))
}

impl Ldb {
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
        let opts = Options {
            create_if_missing: true,
            // rusty-leveldb 4.0 reopens the last write-ahead log and the MANIFEST for
            // appending, after whatever tail the killed process left: a torn last record stays
            // in the file, and its reader stops at the first bad record on the next open, so
            // every record appended after it — acknowledged writes, version edits — would be
            // lost then. Without reuse, opening replays the old log into a table and starts a
            // new log and a new MANIFEST: a torn record can only ever be the last one.
            reuse_logs: false,
            reuse_manifest: false,
            ..Options::default()
        };
        let db = DB::open(&dir, opts).map_err(|e| match e.code {
            StatusCode::LockError => Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{} is locked by another process (or by another open store in this process): {e}",
                    dir.display()
                ),
            ),
            StatusCode::Corruption => Error::new(
                ErrorKind::Corrupt,
                format!("cannot open {}: damaged database: {e}", dir.display()),
            ),
            _ => Error::new(
                ErrorKind::Config,
                format!("cannot open {} as a LevelDB database: {e}", dir.display()),
            ),
        })?;
        Ok(Ldb { db, dir, sync })
    }

    /// rusty-leveldb's synced write only flushes its buffer to the operating system; this
    /// `fsync`s the current write-ahead log (the highest-numbered `NNNNNN.log`) as well.
    fn sync_log(&self) -> Result<()> {
        let mut newest: Option<(u64, PathBuf)> = None;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(num) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if newest.as_ref().is_none_or(|(n, _)| num > *n) {
                newest = Some((num, entry.path()));
            }
        }
        if let Some((_, path)) = newest {
            File::open(path)?.sync_data()?;
        }
        Ok(())
    }
}

impl Engine for Ldb {
    const ORDERED: bool = true;

    /// A point read through the iterator, not `DB::get`/`DB::get_at`: rusty-leveldb 4.0.2's
    /// table lookup (`Version::get`) takes the first entry at or after the key in each table
    /// and, if that entry is a deletion marker, reports the key as deleted without checking
    /// that the marker is for the same key. So a key in an older table reads as absent
    /// whenever a newer table holds a deletion of the next key and that table's bloom filter
    /// gives a false positive (upstream issue dermesser/leveldb-rs#58). The iterator merges
    /// the memtables and tables with the right precedence and skips deletion markers per key.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut it = self.db.new_iter().map_err(ldb_err)?;
        it.seek(key);
        if !it.valid() {
            return Ok(None);
        }
        Ok(match it.current() {
            Some((k, v)) if k.as_ref() == key => Some(v.to_vec()),
            _ => None,
        })
    }

    fn write(&mut self, batch: Vec<WriteOp>) -> Result<()> {
        let mut wb = WriteBatch::default();
        for (k, v) in &batch {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        self.db.write(wb, self.sync).map_err(ldb_err)?;
        if self.sync {
            self.sync_log()?;
        }
        Ok(())
    }

    fn range(&mut self, start: &[u8], end: &[u8], visit: Visit<'_>) -> Result<()> {
        let mut it = self.db.new_iter().map_err(ldb_err)?;
        it.seek(start);
        while it.valid() {
            let Some((k, v)) = it.current() else { break };
            if k.as_ref() >= end {
                break;
            }
            if !visit(&k, &v)? {
                break;
            }
            if !it.advance() {
                break;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.db.close().map_err(ldb_err)?;
        if self.sync {
            self.sync_log()?;
        }
        Ok(())
    }
}

// ----- the trait -----

kv_engine::impl_kv_store!(LevelDbStore, info: inner.info, core: inner.core);
