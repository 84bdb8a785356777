//! The store: one UnQLite file, owned by one worker thread.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Capability, Error, ErrorKind, Operation, Result, StoreInfo};

use crate::config::{UnqliteConfig, UnqliteStoreBuilder};
use crate::raw::{self, Db};
use kv_engine::fs::LockError;
use kv_engine::{Core, Engine, Visit, WriteOp};

const STORE: &str = crate::SCHEME;

/// The longest key the store accepts, in UTF-8 bytes. UnQLite silently loses records whose key
/// does not fit in one 4 KiB page (keys above 4078 bytes are stored but never found again), so
/// the store splits that budget: 5 bytes of prefix, a collection name of up to
/// [`MAX_COLLECTION_LEN`] bytes and a key of up to `MAX_KEY_LEN` bytes.
pub const MAX_KEY_LEN: usize = 2048;

/// The longest collection name the store accepts, in UTF-8 bytes (see [`MAX_KEY_LEN`]).
pub const MAX_COLLECTION_LEN: usize = 2000;

/// A durable key-value store in one UnQLite database file. Cloning is
/// cheap and shares the database.
///
/// Every collection is a contiguous key range of the one database, every value the kv
/// envelope (expiry, creation time, version) followed by the raw value; see
/// [`format`](crate::format). Every write is one UnQLite transaction, committed (journal and
/// file synced) before it returns.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_unqlite::UnqliteStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = UnqliteStore::open_path(dir.path().join("kv.db"))?;
/// store.put("ages", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("ages", "alice").await?, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct UnqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: UnqliteConfig,
    core: Core<Uq>,
}

impl fmt::Debug for UnqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnqliteStore")
            .field("path", &self.inner.config.path)
            .field("default_collection", &self.inner.info.default_collection)
            .finish()
    }
}

impl UnqliteStore {
    /// Opens (or creates) the store of an `unqlite://PATH` URL (see
    /// [`UnqliteConfig::from_url`]). The file is created if missing.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL or a path that cannot hold a database;
    /// [`ErrorKind::Unavailable`] (not temporary) if another process — or another open store
    /// of this process — has the database open (the lock file `PATH.lock`); [`ErrorKind::Corrupt`]
    /// for a damaged database.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("unqlite://{}", dir.path().join("kv.db").display());
    /// let store = kv_store_unqlite::UnqliteStore::open(&url)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = UnqliteConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the database file `path` with the default settings.
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(UnqliteConfig::new(path))
    }

    /// A builder for the database file `path`.
    pub fn builder(path: impl Into<PathBuf>) -> UnqliteStoreBuilder {
        UnqliteStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: UnqliteConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let path = config.path.clone();
        let core = Core::open(STORE, move || Uq::open(path))
            .map_err(open_context)?
            .with_limits(Some(MAX_COLLECTION_LEN), Some(MAX_KEY_LEN));
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
            durable: true,
            shared: false,
            max_key_len: Some(MAX_KEY_LEN),
            max_collection_len: Some(MAX_COLLECTION_LEN),
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        Ok(UnqliteStore {
            inner: Arc::new(Inner { info, config, core }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_unqlite::UnqliteStore::open_path(dir.path().join("kv.db"))?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &UnqliteConfig {
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

/// The UnQLite database, on the worker thread. Fields drop in order: the database is closed
/// before the lock file is released.
struct Uq {
    db: Db,
    _lock: kv_engine::fs::FileLock,
}

fn uq_err(e: raw::Error) -> Error {
    let kind = if e.is_corrupt() {
        ErrorKind::Corrupt
    } else {
        ErrorKind::Backend
    };
    Error::new(kind, format!("unqlite: {e}"))
}

impl From<raw::Error> for Error {
    fn from(e: raw::Error) -> Self {
        uq_err(e)
    }
}

impl Uq {
    fn open(path: PathBuf) -> Result<Self> {
        let config_err = |what: &str| {
            Error::new(
                ErrorKind::Config,
                format!("cannot open {}: {what}", path.display()),
            )
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(config_err("its directory does not exist"));
        }
        if path.is_dir() {
            return Err(config_err("it is a directory"));
        }
        let Some(name) = path.to_str() else {
            return Err(config_err("UnQLite needs a UTF-8 path"));
        };
        // UnQLite opens the file only on first use and reports no second user at open, so the
        // store takes an exclusive lock on PATH.lock first and fails at once if it is held.
        let lock_path = kv_engine::fs::with_suffix(&path, ".lock");
        let lock = kv_engine::fs::lock_file(&lock_path).map_err(|e| match e {
            LockError::Locked => kv_engine::fs::locked(&path, None),
            LockError::Open(e) => config_err(&format!("cannot create its lock file: {e}")),
            LockError::Lock(e) => config_err(&format!("cannot lock {}: {e}", lock_path.display())),
        })?;
        let db = Db::open(name).map_err(|e| config_err(&e.to_string()))?;
        Ok(Uq { db, _lock: lock })
    }
}

impl Engine for Uq {
    const ORDERED: bool = false;

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.fetch(key).map_err(uq_err)
    }

    fn write(&mut self, batch: Vec<WriteOp>) -> Result<()> {
        self.db.begin().map_err(uq_err)?;
        let applied = batch.iter().try_for_each(|(k, v)| match v {
            Some(v) => self.db.store(k, v),
            None => self.db.delete(k),
        });
        match applied {
            // `commit` rolls back by itself when it fails.
            Ok(()) => self.db.commit().map_err(uq_err),
            Err(e) => {
                let _ = self.db.rollback();
                Err(uq_err(e))
            }
        }
    }

    fn range(&mut self, start: &[u8], end: &[u8], visit: Visit<'_>) -> Result<()> {
        self.db.walk(|key| key >= start && key < end, visit)
    }

    fn close(&mut self) -> Result<()> {
        // Every write was committed already; this only ends an empty transaction. The file is
        // closed when the engine is dropped.
        self.db.commit().map_err(uq_err)
    }
}

// ----- the trait -----

kv_engine::impl_kv_store!(UnqliteStore, info: inner.info, core: inner.core);
