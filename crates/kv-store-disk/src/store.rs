//! The store: one redb database, one table per collection, every write one transaction.

use std::fmt;
use std::future::{Future, ready};
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use kv_core::envelope::{self, Meta};
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl, scan,
    ttl,
};
use redb::{
    Database, DatabaseError, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, StorageError, Table, TableError, TableHandle, WriteTransaction,
};

use crate::config::{DiskConfig, DiskStoreBuilder, Durability};
use crate::format::{
    self, FORMAT_VERSION, META_FORMAT_KEY, META_NEXT_VERSION_KEY, META_TABLE, META_TABLE_NAME,
    VERSION_BLOCK,
};

use kv_engine::blocking::run_blocking;

const STORE: &str = crate::SCHEME;

/// With [`Durability::None`] a commit is a few microseconds of memory work, so a small write
/// whose writer lock is free runs on the calling thread instead of paying for a hand-off to the
/// blocking pool. Larger writes, and every write with [`Durability::Immediate`] (which waits
/// for the disk), run on tokio's blocking pool.
const INLINE_MAX_ITEMS: usize = 64;
const INLINE_MAX_BYTES: usize = 64 * 1024;

/// How long `close` waits for operations that started before it to release the database.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

type ReadTable = ReadOnlyTable<&'static str, &'static [u8]>;
type WriteTable<'t> = Table<'t, &'static str, &'static [u8]>;

/// A durable key-value store in one redb file. Cloning is cheap and shares the database.
///
/// Each collection is a redb table, each entry a key of it whose value is the kv envelope
/// (expiry, creation time, version) followed by the raw value; see [`format`](crate::format).
/// Every write is one redb write transaction, durable when it returns unless the store was
/// opened with [`Durability::None`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_disk::DiskStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = DiskStore::open_path(dir.path().join("kv.redb"))?;
/// store.put("ages", "alice", &30).await?;
/// store.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(60)).await?;
/// let age: Option<u32> = store.get("ages", "alice").await?;
/// assert_eq!(age, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: DiskConfig,
    /// `None` once closed.
    state: RwLock<Option<Arc<Open>>>,
}

/// An open database and the writer state that goes with it.
struct Open {
    db: Arc<Database>,
    /// Serialises this store's write transactions (so redb's own writer lock is never waited
    /// for) and hands out versions.
    writer: Mutex<Versions>,
}

/// The version counter. Every version below `reserved` may be handed out without touching
/// `kv:meta`, because the file already says that a reopened store must start at `reserved`.
#[derive(Debug)]
struct Versions {
    next: u64,
    reserved: u64,
}

impl Open {
    fn lock_writer(&self) -> MutexGuard<'_, Versions> {
        // Poisoning means a write panicked: its transaction was dropped (rolled back) and the
        // counter is only updated after a commit, so the state is still good.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_lock_writer(&self) -> Option<MutexGuard<'_, Versions>> {
        match self.writer.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

impl fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.inner.config.path)
            .field("durability", &self.inner.config.durability)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &self.state().is_none())
            .finish()
    }
}

impl DiskStore {
    /// Opens (or creates) the store of a `redb://PATH` or `disk://PATH` URL (see
    /// [`DiskConfig::from_url`]).
    ///
    /// Opening blocks while redb reads the file's header (and, after a crash, repairs it); from
    /// async code with large files, call it inside `tokio::task::spawn_blocking`.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a missing directory, a path that is a
    /// directory or not writable, or a file that is not a redb database (it is left untouched);
    /// [`ErrorKind::Unavailable`] (not temporary) if another process — or another open store of
    /// this process — has the file open; [`ErrorKind::Corrupt`] for a damaged file.
    ///
    /// ```
    /// use kv_store_disk::DiskStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("redb://{}?durability=none", dir.path().join("kv.redb").display());
    /// let store = DiskStore::open(&url)?;
    /// assert!(!kv_core::KvStore::info(&store).capability.durable);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = DiskConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the store in the file at `path`, with the default settings.
    ///
    /// ```
    /// use kv_store_disk::DiskStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = DiskStore::open_path(dir.path().join("kv.redb"))?;
    /// assert_eq!(store.path(), dir.path().join("kv.redb"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(DiskConfig::new(path))
    }

    /// A builder for the store in the file at `path`.
    ///
    /// ```
    /// use kv_store_disk::{DiskStore, Durability};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = DiskStore::builder(dir.path().join("kv.redb"))
    ///     .durability(Durability::None)
    ///     .open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(path: impl Into<PathBuf>) -> DiskStoreBuilder {
        DiskStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: DiskConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let db = open_database(&config).map_err(open_context)?;
        let next = init_meta(&db)
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("cannot open {}: {}", config.path.display(), e.message()),
                )
            })
            .map_err(open_context)?;
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
            durable: config.durability == Durability::Immediate,
            shared: false,
            max_key_len: None,
            max_collection_len: None,
            max_value_len: None,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        let open = Open {
            db: Arc::new(db),
            writer: Mutex::new(Versions {
                next,
                reserved: next,
            }),
        };
        Ok(DiskStore {
            inner: Arc::new(Inner {
                info,
                config,
                state: RwLock::new(Some(Arc::new(open))),
            }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_disk::DiskStore::open_path(dir.path().join("kv.redb"))?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The redb file.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = kv_store_disk::DiskStore::open_path(dir.path().join("kv.redb"))?;
    /// assert!(store.path().ends_with("kv.redb"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = kv_store_disk::DiskStore::open_path(dir.path().join("kv.redb"))?;
    /// assert_eq!(store.config().durability, kv_store_disk::Durability::Immediate);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self) -> &DiskConfig {
        &self.inner.config
    }

    /// The underlying redb database, for inspection, tests and tools (an
    /// [`ErrorKind::Closed`] error after [`close`](KvStore::close)).
    ///
    /// Tables are named by [`format::table_name`](crate::format::table_name) and typed as
    /// [`format::data_table`](crate::format::data_table). Reading is always safe. A write
    /// transaction started here waits for (and makes wait) the store's own writes; it must not
    /// touch `kv:meta`, and values it writes into a collection's table must be kv envelopes or
    /// the store reports them as [`ErrorKind::Corrupt`]. While a handle returned here is alive,
    /// `close` cannot release the file: it waits up to 10 s, then leaves closing the file to
    /// the last handle's drop.
    ///
    /// ```
    /// use redb::{ReadableDatabase, ReadableTableMetadata};
    /// use kv_core::KvStoreExt;
    /// use kv_store_disk::{DiskStore, format};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open_path(dir.path().join("kv.redb"))?;
    /// store.put("users", "alice", &1).await?;
    /// let db = store.database()?;
    /// let name = format::table_name("users");
    /// let txn = db.begin_read().unwrap();
    /// let table = txn.open_table(format::data_table(&name)).unwrap();
    /// assert_eq!(table.len().unwrap(), 1);
    /// # Ok::<(), kv_core::Error>(()) }).unwrap();
    /// ```
    pub fn database(&self) -> Result<Arc<Database>> {
        match self.state() {
            Some(open) => Ok(open.db.clone()),
            None => Err(Error::new(ErrorKind::Closed, "the store was closed").with_store(STORE)),
        }
    }

    fn state(&self) -> Option<Arc<Open>> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn open_state(&self, op: Operation) -> Result<Arc<Open>> {
        self.state().ok_or_else(|| closed(op))
    }

    /// The writer lock, if this write may run on the calling thread (see [`INLINE_MAX_ITEMS`]).
    fn inline_writer<'o>(
        &self,
        open: &'o Open,
        items: usize,
        bytes: usize,
    ) -> Option<MutexGuard<'o, Versions>> {
        if self.inner.config.durability != Durability::None
            || items > INLINE_MAX_ITEMS
            || bytes > INLINE_MAX_BYTES
        {
            return None;
        }
        open.try_lock_writer()
    }

    fn durability(&self) -> redb::Durability {
        match self.inner.config.durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        }
    }

    // ----- reads -----
    //
    // Reads run on the calling thread: a redb read transaction is a snapshot that never waits
    // for writers, and a read is served from redb's page cache in microseconds (a cold page is
    // one positioned read of 4 KiB). Handing each read to the blocking pool would cost more
    // than the read itself.

    fn get_sync(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        let op = Operation::Get;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), Some(key));
        let open = self.open_state(op).map_err(ctx)?;
        let txn = open.db.begin_read().map_err(|e| ctx(db_error(e)))?;
        let table = format::table_name(name);
        let Some(table) = read_table(&txn, &table).map_err(ctx)? else {
            return Ok(None);
        };
        read_entry(&table, key, &mut None).map_err(ctx)
    }

    fn get_many_sync(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let op = Operation::GetMany;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), None);
        let open = self.open_state(op).map_err(ctx)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let txn = open.db.begin_read().map_err(|e| ctx(db_error(e)))?;
        let table = format::table_name(name);
        let Some(table) = read_table(&txn, &table).map_err(ctx)? else {
            return Ok(vec![None; keys.len()]);
        };
        let mut now = None;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let entry = read_entry(&table, key, &mut now)
                .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))?;
            out.push(entry);
        }
        Ok(out)
    }

    fn ttl_sync(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        let op = Operation::Ttl;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), Some(key));
        let open = self.open_state(op).map_err(ctx)?;
        let txn = open.db.begin_read().map_err(|e| ctx(db_error(e)))?;
        let table = format::table_name(name);
        let Some(table) = read_table(&txn, &table).map_err(ctx)? else {
            return Ok(None);
        };
        let Some(guard) = table.get(key).map_err(|e| ctx(db_error(e)))? else {
            return Ok(None);
        };
        let (meta, _) = envelope::decode_meta(guard.value()).map_err(ctx)?;
        Ok(match meta.expires_at {
            None => Some(Ttl::Never),
            Some(at) => {
                let now = Timestamp::now();
                at.duration_since(now)
                    .filter(|left| !left.is_zero())
                    .map(Ttl::Remaining)
            }
        })
    }

    fn scan_sync(&self, collection: &str, opts: &ScanOptions) -> Result<ScanPage> {
        let op = Operation::Scan;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), None);
        let open = self.open_state(op).map_err(ctx)?;
        // Checked before looking at the data, so a bad cursor is reported the same way always.
        let after = scan::key_after(opts).map_err(ctx)?;
        let txn = open.db.begin_read().map_err(|e| ctx(db_error(e)))?;
        let table = format::table_name(name);
        let Some(table) = read_table(&txn, &table).map_err(ctx)? else {
            return Ok(ScanPage::default());
        };
        let upper = scan::prefix_upper_bound(&opts.prefix);
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None if opts.prefix.is_empty() => Bound::Unbounded,
            None => Bound::Included(opts.prefix.as_str()),
        };
        let upper = match &upper {
            Some(u) => Bound::Excluded(u.as_str()),
            None => Bound::Unbounded,
        };
        let limit = opts.page_size.max(1);
        let mut items: Vec<ScanItem> = Vec::with_capacity(limit.min(1024));
        let mut cursor = None;
        let mut now = None;
        let range = table
            .range::<&str>((lower, upper))
            .map_err(|e| ctx(db_error(e)))?;
        for item in range {
            let (k, v) = item.map_err(|e| ctx(db_error(e)))?;
            if items.len() == limit {
                // Something follows the full page (perhaps only expired entries: then the
                // next page is empty and ends the scan).
                cursor = items.last().map(|i| scan::cursor_after(&i.key));
                break;
            }
            let key = k.value();
            let raw = v.value();
            let (meta, header) = envelope::decode_meta(raw)
                .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))?;
            if !is_live(&meta, &mut now) {
                continue;
            }
            let entry = if opts.keys_only {
                None
            } else {
                Some(meta.into_entry(value_of(raw, header)))
            };
            items.push(ScanItem::new(key.to_owned(), entry));
        }
        Ok(ScanPage::new(items, cursor))
    }

    fn collections_sync(&self) -> Result<Vec<String>> {
        let op = Operation::Collections;
        let ctx = |e: Error| e.with_context(STORE, op, None, None);
        let open = self.open_state(op).map_err(ctx)?;
        let txn = open.db.begin_read().map_err(|e| ctx(db_error(e)))?;
        let mut names = Vec::new();
        let mut now = None;
        for handle in txn.list_tables().map_err(|e| ctx(db_error(e)))? {
            let Some(collection) = format::collection_of(handle.name()) else {
                continue;
            };
            let ctx = |e: Error| e.with_context(STORE, op, Some(collection), None);
            let Some(table) = read_table(&txn, handle.name()).map_err(ctx)? else {
                continue;
            };
            if has_live_entry(&table, &mut now).map_err(ctx)? {
                names.push(collection.to_owned());
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    // ----- writes -----
    //
    // Each write is prepared here (checks that need no I/O, so their errors come at once),
    // then run on the calling thread when cheap (see INLINE_MAX_ITEMS) or on tokio's blocking
    // pool, so that an fsync never blocks the async runtime.

    fn put_step(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Step<(), impl FnOnce() -> Result<()> + Send + 'static + use<>> {
        let op = Operation::Put;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), Some(key));
        let now = Timestamp::now();
        let prepared = ttl::expires_at(now, opts.ttl).and_then(|expires_at| {
            check_mode(&opts.mode)?;
            Ok((self.open_state(op)?, expires_at))
        });
        let (open, expires_at) = match prepared {
            Ok(p) => p,
            Err(e) => return Step::Done(Err(ctx(e))),
        };
        let durability = self.durability();
        let table = format::table_name(name);
        let mode = opts.mode;
        if let Some(writer) = self.inline_writer(&open, 1, value.len()) {
            let put = PutArgs {
                table: &table,
                key,
                value: &value,
                mode: &mode,
                now,
                expires_at,
            };
            return Step::Done(
                write_txn(&open, writer, durability, |txn, v| put.run(txn, v)).map_err(ctx),
            );
        }
        let key = key.to_owned();
        Step::Blocking(move || {
            let put = PutArgs {
                table: &table,
                key: &key,
                value: &value,
                mode: &mode,
                now,
                expires_at,
            };
            write_txn(&open, open.lock_writer(), durability, |txn, v| {
                put.run(txn, v)
            })
            .map_err(|e| e.with_context(STORE, op, format::collection_of(&table), Some(&key)))
        })
    }

    fn put_many_step(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Step<(), impl FnOnce() -> Result<()> + Send + 'static + use<>> {
        let op = Operation::PutMany;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), None);
        let now = Timestamp::now();
        let prepared = ttl::expires_at(now, opts.ttl)
            .and_then(|expires_at| Ok((self.open_state(op)?, expires_at)));
        let (open, expires_at) = match prepared {
            Ok(p) => p,
            Err(e) => return Step::Done(Err(ctx(e))),
        };
        if entries.is_empty() {
            return Step::Done(Ok(()));
        }
        let durability = self.durability();
        let table = format::table_name(name);
        let bytes = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        if let Some(writer) = self.inline_writer(&open, entries.len(), bytes) {
            let items = entries.iter().map(|(k, v)| (*k, &v[..]));
            let r = write_txn(&open, writer, durability, |txn, v| {
                put_many_in(txn, v, &table, items, now, expires_at)
            });
            return Step::Done(r.map_err(ctx));
        }
        let keys = KeyList::new(entries.iter().map(|(k, _)| *k));
        let values: Vec<Bytes> = entries.iter().map(|(_, v)| v.clone()).collect();
        Step::Blocking(move || {
            let items = keys.iter().zip(values.iter().map(|v| &v[..]));
            write_txn(&open, open.lock_writer(), durability, |txn, v| {
                put_many_in(txn, v, &table, items, now, expires_at)
            })
            .map_err(|e| e.with_context(STORE, op, format::collection_of(&table), None))
        })
    }

    fn delete_step(
        &self,
        op: Operation,
        collection: &str,
        keys: &[&str],
    ) -> Step<u64, impl FnOnce() -> Result<u64> + Send + 'static + use<>> {
        let name = self.inner.info.resolve(collection);
        let single = (op == Operation::Delete)
            .then(|| keys.first().copied())
            .flatten();
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), single);
        let open = match self.open_state(op) {
            Ok(o) => o,
            Err(e) => return Step::Done(Err(ctx(e))),
        };
        if keys.is_empty() {
            return Step::Done(Ok(0));
        }
        let durability = self.durability();
        let table = format::table_name(name);
        if let Some(writer) = self.inline_writer(&open, keys.len(), 0) {
            let r = write_txn(&open, writer, durability, |txn, _| {
                delete_in(txn, &table, keys.iter().copied())
            });
            return Step::Done(r.map_err(ctx));
        }
        let keys = KeyList::new(keys.iter().copied());
        Step::Blocking(move || {
            write_txn(&open, open.lock_writer(), durability, |txn, _| {
                delete_in(txn, &table, keys.iter())
            })
            .map_err(|e| {
                let key = (op == Operation::Delete)
                    .then(|| keys.iter().next())
                    .flatten();
                e.with_context(STORE, op, format::collection_of(&table), key)
            })
        })
    }

    /// A whole-table write (clear, destroy, cull): always on the blocking pool, since its
    /// cost grows with the data.
    fn table_step<T, B>(
        &self,
        op: Operation,
        collection: Option<&str>,
        body: B,
    ) -> Step<T, impl FnOnce() -> Result<T> + Send + 'static + use<T, B>>
    where
        T: Send + 'static,
        B: FnOnce(&WriteTransaction, Option<&str>) -> Result<(T, bool)> + Send + 'static,
    {
        let collection = collection.map(|c| self.inner.info.resolve(c));
        let open = match self.open_state(op) {
            Ok(o) => o,
            Err(e) => return Step::Done(Err(e.with_context(STORE, op, collection, None))),
        };
        let durability = self.durability();
        let table = collection.map(format::table_name);
        Step::Blocking(move || {
            let table = table.as_deref();
            write_txn(&open, open.lock_writer(), durability, |txn, _| {
                body(txn, table)
            })
            .map_err(|e| e.with_context(STORE, op, table.and_then(format::collection_of), None))
        })
    }
}

// ----- open -----

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

fn closed(op: Operation) -> Error {
    Error::new(ErrorKind::Closed, "the store was closed")
        .with_store(STORE)
        .with_operation(op)
}

fn open_database(config: &DiskConfig) -> Result<Database> {
    let path = &config.path;
    let mut builder = redb::Builder::new();
    if let Some(bytes) = config.cache_size {
        builder.set_cache_size(bytes);
    }
    builder.set_check_integrity_on_open(config.check_integrity);
    // redb trusts a file that was closed cleanly, and may panic on one damaged outside redb
    // (checked: flipping bytes of a closed file makes the open panic in a B-tree walk). The
    // half-opened database is dropped by the unwind, so turning the panic into an error is
    // safe.
    match catch_unwind(AssertUnwindSafe(|| builder.create(path))) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(e, path)),
        Err(_) => Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "redb failed while reading {}: the file is damaged (open it with check_integrity=true for a precise report)",
                path.display()
            ),
        )),
    }
}

fn open_error(e: DatabaseError, path: &Path) -> Error {
    let p = path.display();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::new(
            ErrorKind::Unavailable,
            format!(
                "{p} is locked by another process (or by another open store in this process): a redb file has one writer at a time"
            ),
        )
        .temporary(false),
        DatabaseError::UpgradeRequired(v) => Error::new(
            ErrorKind::Config,
            format!("{p} uses redb file format {v}, which this redb version cannot open"),
        ),
        DatabaseError::RepairAborted => Error::new(
            ErrorKind::Corrupt,
            format!("{p} needs a repair, which was aborted"),
        ),
        DatabaseError::Storage(StorageError::Io(io)) => {
            use std::io::ErrorKind as Io;
            let (kind, what) = match io.kind() {
                Io::NotFound if path.parent().is_some_and(|d| !d.as_os_str().is_empty() && !d.exists()) => {
                    (ErrorKind::Config, "its directory does not exist")
                }
                Io::NotFound => (ErrorKind::Config, "the file cannot be created there"),
                Io::PermissionDenied => (ErrorKind::Config, "permission denied"),
                Io::IsADirectory => (ErrorKind::Config, "it is a directory"),
                Io::NotADirectory => (
                    ErrorKind::Config,
                    "a component of the path is not a directory",
                ),
                Io::InvalidData => (ErrorKind::Config, "it is not a redb database"),
                Io::ReadOnlyFilesystem => (ErrorKind::Config, "the file system is read-only"),
                Io::StorageFull | Io::QuotaExceeded => (ErrorKind::Unavailable, "the disk is full"),
                _ => (ErrorKind::Backend, "i/o error"),
            };
            Error::new(kind, format!("cannot open {p}: {what}"))
                .temporary(false)
                .with_source(io)
        }
        DatabaseError::Storage(StorageError::Corrupted(msg)) => {
            Error::new(ErrorKind::Corrupt, format!("{p} is damaged: {msg}"))
        }
        other => Error::new(ErrorKind::Backend, format!("cannot open {p}: {other}")),
    }
}

/// Checks (or, for a new file, writes) the format version; returns the version counter's
/// start.
fn init_meta(db: &Database) -> Result<u64> {
    // An existing store needs only a read.
    {
        let txn = db.begin_read().map_err(db_error)?;
        match txn.open_table(META_TABLE) {
            Ok(t) => {
                let format = t.get(META_FORMAT_KEY).map_err(db_error)?.map(|g| g.value());
                let next = t
                    .get(META_NEXT_VERSION_KEY)
                    .map_err(db_error)?
                    .map(|g| g.value());
                if let Some(f) = format {
                    check_format(f)?;
                }
                if let (Some(_), Some(next)) = (format, next) {
                    return Ok(next.max(1));
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(meta_table_error(e)),
        }
    }
    let txn = db.begin_write().map_err(db_error)?;
    let next = {
        let mut t = txn.open_table(META_TABLE).map_err(meta_table_error)?;
        let format = t.get(META_FORMAT_KEY).map_err(db_error)?.map(|g| g.value());
        match format {
            Some(f) => check_format(f)?,
            None => {
                t.insert(META_FORMAT_KEY, FORMAT_VERSION)
                    .map_err(db_error)?;
            }
        }
        let next = t
            .get(META_NEXT_VERSION_KEY)
            .map_err(db_error)?
            .map_or(1, |g| g.value())
            .max(1);
        t.insert(META_NEXT_VERSION_KEY, next).map_err(db_error)?;
        next
    };
    txn.commit().map_err(db_error)?;
    Ok(next)
}

fn check_format(found: u64) -> Result<()> {
    if found == FORMAT_VERSION {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "the file is in kv-store-disk format {found}; this version reads format {FORMAT_VERSION}"
        ),
    ))
}

fn meta_table_error(e: TableError) -> Error {
    match e {
        TableError::Storage(s) => db_error(s),
        other => Error::new(
            ErrorKind::Config,
            format!(
                "the file has a table `{META_TABLE_NAME}` that kv-store-disk did not write ({other})"
            ),
        ),
    }
}

// ----- redb errors -----

/// Maps any redb error to a kv error. redb's message is kept in ours (redb's error type is not
/// always `Sync`, so it cannot be the source); I/O errors are kept as the source.
fn db_error(e: impl Into<redb::Error>) -> Error {
    let e = match e.into() {
        redb::Error::Io(io) => {
            // kv-core's mapping of I/O errors decides the kind and whether it is temporary.
            let like = Error::from(std::io::Error::from(io.kind()));
            return Error::new(like.kind(), "redb i/o error")
                .temporary(like.is_temporary())
                .with_source(io);
        }
        other => other,
    };
    let kind = match &e {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            return Error::new(
                ErrorKind::Unavailable,
                "the database is locked by another process",
            )
            .temporary(false);
        }
        redb::Error::Corrupted(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. } => ErrorKind::Corrupt,
        redb::Error::ValueTooLarge(_) => {
            return Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "{e} (redb stores at most 3 GiB per value, including kv's envelope of up to 27 bytes)"
                ),
            );
        }
        redb::Error::DatabaseClosed => ErrorKind::Closed,
        redb::Error::UpgradeRequired(_) => ErrorKind::Config,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("redb: {e}"))
}

fn table_error(e: TableError, table: &str) -> Error {
    match e {
        TableError::Storage(s) => db_error(s),
        TableError::TableTypeMismatch { .. }
        | TableError::TableIsMultimap(_)
        | TableError::TypeDefinitionChanged { .. } => Error::new(
            ErrorKind::Corrupt,
            format!("redb table `{table}` does not hold kv entries: {e}"),
        ),
        other => db_error(other),
    }
}

// ----- entries -----

#[inline]
fn is_live(meta: &Meta, now: &mut Option<Timestamp>) -> bool {
    // The clock is read at most once per operation, and only if an entry can expire.
    meta.expires_at
        .is_none_or(|at| at > *now.get_or_insert_with(Timestamp::now))
}

#[inline]
fn value_of(raw: &[u8], header: usize) -> Bytes {
    // `decode_meta` checked that the header fits; `get` keeps that a non-panicking fact.
    Bytes::copy_from_slice(raw.get(header..).unwrap_or_default())
}

fn read_table(txn: &ReadTransaction, table: &str) -> Result<Option<ReadTable>> {
    match txn.open_table(format::data_table(table)) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(table_error(e, table)),
    }
}

fn open_write_table<'t>(txn: &'t WriteTransaction, table: &str) -> Result<WriteTable<'t>> {
    txn.open_table(format::data_table(table))
        .map_err(|e| table_error(e, table))
}

fn read_entry(table: &ReadTable, key: &str, now: &mut Option<Timestamp>) -> Result<Option<Entry>> {
    let Some(guard) = table.get(key).map_err(db_error)? else {
        return Ok(None);
    };
    let raw = guard.value();
    let (meta, header) = envelope::decode_meta(raw)?;
    if !is_live(&meta, now) {
        return Ok(None);
    }
    Ok(Some(meta.into_entry(value_of(raw, header))))
}

/// True if the table holds an entry that has not expired. Undecodable bytes count as an
/// entry: the collection is not empty, and listing must not fail because of one bad value.
fn has_live_entry(table: &ReadTable, now: &mut Option<Timestamp>) -> Result<bool> {
    for item in table.iter().map_err(db_error)? {
        let (_, v) = item.map_err(db_error)?;
        match envelope::decode_meta(v.value()) {
            Ok((meta, _)) if !is_live(&meta, now) => continue,
            _ => return Ok(true),
        }
    }
    Ok(false)
}

/// Writes the envelope and the value straight into the space redb reserves for them.
fn write_entry(table: &mut WriteTable<'_>, key: &str, meta: &Meta, value: &[u8]) -> Result<()> {
    let mut slot = table
        .insert_reserve(key, meta.header_len() + value.len())
        .map_err(db_error)?;
    let mut buf: &mut [u8] = slot.as_mut();
    envelope::encode_into(meta, value, &mut buf);
    Ok(())
}

fn check_mode(mode: &PutMode) -> Result<()> {
    match mode {
        PutMode::Upsert | PutMode::IfAbsent | PutMode::IfVersion(_) => Ok(()),
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("put mode {other:?} is not supported"),
        )),
    }
}

// ----- write transactions -----

/// Versions for one write transaction: taken from the counter, raising the reserve in
/// `kv:meta` (in the same transaction) when they would pass it.
struct VersionSource {
    next: u64,
    reserved: u64,
    taken: u64,
    raised: Option<u64>,
}

impl VersionSource {
    /// `n` consecutive new versions; returns the first.
    fn take(&mut self, txn: &WriteTransaction, n: u64) -> Result<u64> {
        let exhausted = || Error::new(ErrorKind::Backend, "the version counter is exhausted");
        let first = self.next.checked_add(self.taken).ok_or_else(exhausted)?;
        let end = first.checked_add(n).ok_or_else(exhausted)?;
        if end > self.raised.unwrap_or(self.reserved) {
            let raise = end.checked_add(VERSION_BLOCK).ok_or_else(exhausted)?;
            let mut meta = txn.open_table(META_TABLE).map_err(meta_table_error)?;
            meta.insert(META_NEXT_VERSION_KEY, raise)
                .map_err(db_error)?;
            self.raised = Some(raise);
        }
        self.taken += n;
        Ok(first)
    }
}

/// Runs `body` in one write transaction and commits it if the body says so (`(result, true)`);
/// otherwise, or on error, the transaction is rolled back. The caller holds the writer lock.
fn write_txn<R>(
    open: &Open,
    mut writer: MutexGuard<'_, Versions>,
    durability: redb::Durability,
    body: impl FnOnce(&WriteTransaction, &mut VersionSource) -> Result<(R, bool)>,
) -> Result<R> {
    let mut txn = open.db.begin_write().map_err(db_error)?;
    if !matches!(durability, redb::Durability::Immediate) {
        txn.set_durability(durability).map_err(db_error)?;
    }
    let mut versions = VersionSource {
        next: writer.next,
        reserved: writer.reserved,
        taken: 0,
        raised: None,
    };
    let (result, commit) = body(&txn, &mut versions)?;
    if !commit {
        txn.abort().map_err(db_error)?;
        return Ok(result);
    }
    let committed = txn.commit();
    // Also after a failed commit: redb may have made it durable anyway, so its versions are
    // never handed out again.
    writer.next = versions.next.saturating_add(versions.taken);
    committed.map_err(db_error)?;
    if let Some(raised) = versions.raised {
        writer.reserved = raised;
    }
    Ok(result)
}

struct PutArgs<'a> {
    table: &'a str,
    key: &'a str,
    value: &'a [u8],
    mode: &'a PutMode,
    now: Timestamp,
    expires_at: Option<Timestamp>,
}

impl PutArgs<'_> {
    fn run(&self, txn: &WriteTransaction, versions: &mut VersionSource) -> Result<((), bool)> {
        let mut table = open_write_table(txn, self.table)?;
        // The condition is checked in the write transaction, so it holds at the commit.
        match self.mode {
            PutMode::IfAbsent => {
                if let Some(old) = table.get(self.key).map_err(db_error)? {
                    let (meta, _) = envelope::decode_meta(old.value())?;
                    if is_live(&meta, &mut Some(self.now)) {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "an entry with this key exists",
                        ));
                    }
                }
            }
            PutMode::IfVersion(expected) => {
                let current = match table.get(self.key).map_err(db_error)? {
                    Some(old) => {
                        let (meta, _) = envelope::decode_meta(old.value())?;
                        meta.version.filter(|_| is_live(&meta, &mut Some(self.now)))
                    }
                    None => None,
                };
                if current.is_none() || current != expected.as_u64() {
                    return Err(Error::new(
                        ErrorKind::ConditionFailed,
                        "the entry is missing or was changed since this version was read",
                    ));
                }
            }
            _ => {}
        }
        let version = versions.take(txn, 1)?;
        let meta = Meta {
            expires_at: self.expires_at,
            created_at: Some(self.now),
            version: Some(version),
        };
        write_entry(&mut table, self.key, &meta, self.value)?;
        Ok(((), true))
    }
}

fn put_many_in<'a>(
    txn: &WriteTransaction,
    versions: &mut VersionSource,
    table: &str,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<((), bool)> {
    let first = versions.take(txn, entries.len() as u64)?;
    let mut table = open_write_table(txn, table)?;
    for (version, (key, value)) in (first..).zip(entries) {
        let meta = Meta {
            expires_at,
            created_at: Some(now),
            version: Some(version),
        };
        write_entry(&mut table, key, &meta, value).map_err(|e| e.with_key(key))?;
    }
    Ok(((), true))
}

/// Removes the keys; counts the live ones (a key given twice is found once). Undecodable
/// values are removed and counted: deleting never needs to read them. Rolled back when
/// nothing was there, so a miss costs no disk write.
fn delete_in<'a>(
    txn: &WriteTransaction,
    table: &str,
    keys: impl Iterator<Item = &'a str>,
) -> Result<(u64, bool)> {
    let mut table = open_write_table(txn, table)?;
    let mut now = None;
    let mut live = 0;
    let mut changed = false;
    for key in keys {
        if let Some(old) = table.remove(key).map_err(db_error)? {
            changed = true;
            match envelope::decode_meta(old.value()) {
                Ok((meta, _)) if !is_live(&meta, &mut now) => {}
                _ => live += 1,
            }
        }
    }
    Ok((live, changed))
}

/// Counts the live entries of a table and deletes it.
fn clear_in(txn: &WriteTransaction, table_name: Option<&str>) -> Result<(u64, bool)> {
    let Some(table_name) = table_name else {
        return Ok((0, false));
    };
    let table = open_write_table(txn, table_name)?;
    if table.is_empty().map_err(db_error)? {
        // Missing (opening created it in this transaction) or already empty.
        return Ok((0, false));
    }
    let mut now = None;
    let mut live = 0;
    for item in table.iter().map_err(db_error)? {
        let (_, v) = item.map_err(db_error)?;
        match envelope::decode_meta(v.value()) {
            Ok((meta, _)) if !is_live(&meta, &mut now) => {}
            _ => live += 1,
        }
    }
    drop(table);
    txn.delete_table(format::data_table(table_name))
        .map_err(|e| table_error(e, table_name))?;
    Ok((live, true))
}

/// The names of the store's collection tables.
fn collection_tables(txn: &WriteTransaction) -> Result<Vec<String>> {
    Ok(txn
        .list_tables()
        .map_err(db_error)?
        .filter(|h| format::collection_of(h.name()).is_some())
        .map(|h| h.name().to_owned())
        .collect())
}

fn destroy_in(txn: &WriteTransaction) -> Result<((), bool)> {
    let tables = collection_tables(txn)?;
    for name in &tables {
        txn.delete_table(format::data_table(name))
            .map_err(|e| table_error(e, name))?;
    }
    // `kv:meta` stays: the version counter must survive, so that a key written again after a
    // destroy never gets an old version back.
    Ok(((), !tables.is_empty()))
}

/// Removes expired entries, and the tables they leave empty. Undecodable values are kept:
/// whether they expired is unknown.
fn cull_in(txn: &WriteTransaction) -> Result<(u64, bool)> {
    let now = Timestamp::now();
    let mut removed = 0u64;
    let mut changed = false;
    for name in collection_tables(txn)? {
        let mut table = open_write_table(txn, &name)?;
        let before = removed;
        table
            .retain(|_, v| match envelope::decode_meta(v) {
                Ok((meta, _)) if meta.is_expired_at(now) => {
                    removed += 1;
                    false
                }
                _ => true,
            })
            .map_err(|e| {
                db_error(e).with_collection(format::collection_of(&name).unwrap_or_default())
            })?;
        let empty = table.is_empty().map_err(db_error)?;
        drop(table);
        if empty {
            txn.delete_table(format::data_table(&name))
                .map_err(|e| table_error(e, &name))?;
        }
        changed |= empty || removed > before;
    }
    Ok((removed, changed))
}

/// Keys of a batch in one allocation, for a write that runs on another thread.
struct KeyList {
    buf: String,
    ends: Vec<usize>,
}

impl KeyList {
    fn new<'a>(keys: impl Iterator<Item = &'a str> + Clone) -> Self {
        let len = keys.clone().map(str::len).sum();
        let mut buf = String::with_capacity(len);
        let mut ends = Vec::with_capacity(keys.size_hint().0);
        for k in keys {
            buf.push_str(k);
            ends.push(buf.len());
        }
        KeyList { buf, ends }
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            // Both ends are where a pushed key ended, so always on char boundaries.
            let key = self.buf.get(start..end).unwrap_or_default();
            start = end;
            key
        })
    }
}

// ----- running writes -----

/// A write that either finished on the calling thread or still has to run.
enum Step<T, F> {
    Done(Result<T>),
    Blocking(F),
}

async fn finish<T, F>(op: Operation, step: Step<T, F>) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match step {
        Step::Done(r) => r,
        Step::Blocking(f) => run_blocking(STORE, op, f).await,
    }
}

/// Waits for the operations that started before `close` to let go of the database, then
/// closes it, which releases the file lock.
fn close_database(open: Arc<Open>) -> Result<()> {
    let deadline = Instant::now() + CLOSE_WAIT;
    let mut open = open;
    let mut db = loop {
        match Arc::try_unwrap(open) {
            Ok(o) => break o.db,
            Err(shared) if Instant::now() < deadline => {
                open = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            // Still in use: the last user's drop closes the file.
            Err(_) => return Ok(()),
        }
    };
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                return db.close().map_err(|e| {
                    db_error(e)
                        .with_store(STORE)
                        .with_operation(Operation::Close)
                });
            }
            Err(shared) if Instant::now() < deadline => {
                db = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            // A handle from `database()` is still alive: its drop closes the file.
            Err(_) => return Ok(()),
        }
    }
}

impl KvStore for DiskStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        ready(self.get_sync(collection, key))
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        ready(self.get_many_sync(collection, keys))
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        finish(Operation::Put, self.put_step(collection, key, value, opts))
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        finish(
            Operation::PutMany,
            self.put_many_step(collection, entries, opts),
        )
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let step = self.delete_step(Operation::Delete, collection, &[key]);
        async move { finish(Operation::Delete, step).await.map(|n| n > 0) }
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        finish(
            Operation::DeleteMany,
            self.delete_step(Operation::DeleteMany, collection, keys),
        )
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        ready(self.ttl_sync(collection, key))
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        ready(self.scan_sync(collection, &opts))
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        ready(self.collections_sync())
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        finish(
            Operation::Clear,
            self.table_step(Operation::Clear, Some(collection), clear_in),
        )
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        finish(
            Operation::Destroy,
            self.table_step(Operation::Destroy, None, |txn, _| destroy_in(txn)),
        )
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        finish(
            Operation::Cull,
            self.table_step(Operation::Cull, None, |txn, _| cull_in(txn)),
        )
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        // Later operations fail with `Closed` from this call on; the file is released once
        // the operations already running have finished.
        let taken = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        async move {
            match taken {
                Some(open) => {
                    run_blocking(STORE, Operation::Close, move || close_database(open)).await
                }
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::{KvStoreExt, Version};

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn version(store: &DiskStore, c: &str, k: &str) -> u64 {
        block_on(store.get_entry(c, k))
            .unwrap()
            .and_then(|e| e.version)
            .and_then(|v| v.as_u64())
            .expect("a numeric version")
    }

    fn meta_next(store: &DiskStore) -> u64 {
        let db = store.database().unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(META_TABLE).unwrap();
        t.get(META_NEXT_VERSION_KEY).unwrap().unwrap().value()
    }

    #[test]
    fn versions_grow_across_blocks_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let mut last = 0;
        for round in 0..3 {
            let store = DiskStore::builder(&path)
                .durability(Durability::None)
                .open()
                .unwrap();
            // Cross a block boundary with a batch, then single writes.
            let keys: Vec<String> = (0..VERSION_BLOCK + 10).map(|i| format!("k{i}")).collect();
            let entries: Vec<(&str, Bytes)> = keys
                .iter()
                .map(|k| (k.as_str(), Bytes::from_static(b"1")))
                .collect();
            block_on(store.put_many_opts("c", &entries, PutManyOptions::default())).unwrap();
            let first = version(&store, "c", "k0");
            assert!(first > last, "round {round}: {first} <= {last}");
            let batch_last = version(&store, "c", &keys[keys.len() - 1]);
            assert_eq!(batch_last, first + VERSION_BLOCK + 9);
            block_on(store.put("c", "k0", &2)).unwrap();
            let single = version(&store, "c", "k0");
            assert!(single > batch_last);
            // Every version handed out is below the reserve on disk.
            assert!(meta_next(&store) > single);
            last = single;
            block_on(store.close()).unwrap();
        }
    }

    #[test]
    fn failed_conditions_write_nothing_and_keep_versions_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open_path(dir.path().join("kv.redb")).unwrap();
        block_on(store.put("c", "k", &1)).unwrap();
        let v = version(&store, "c", "k");
        let stale = PutOptions::default().with_mode(PutMode::IfVersion(Version::from_u64(v + 1)));
        let e = block_on(store.put_opts("c", "k", Bytes::from_static(b"2"), stale)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConditionFailed);
        assert_eq!(e.collection(), Some("c"));
        assert_eq!(e.key(), Some("k"));
        let opaque =
            PutOptions::default().with_mode(PutMode::IfVersion(Version::from_bytes(b"x".to_vec())));
        let e = block_on(store.put_opts("c", "k", Bytes::from_static(b"2"), opaque)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConditionFailed);
        block_on(store.put("c", "k2", &1)).unwrap();
        assert!(version(&store, "c", "k2") > v);
        assert_eq!(version(&store, "c", "k"), v);
    }

    #[test]
    fn relaxed_durability_survives_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let store = DiskStore::builder(&path)
            .durability(Durability::None)
            .open()
            .unwrap();
        assert!(!store.info().capability.durable);
        assert!(store.info().location.ends_with("?durability=none"));
        block_on(store.put("c", "k", &1)).unwrap();
        block_on(store.put_many("c", &[("a", 1), ("b", 2)])).unwrap();
        assert!(block_on(store.delete("c", "a")).unwrap());
        block_on(store.close()).unwrap();
        let store = DiskStore::open_path(&path).unwrap();
        assert!(store.info().capability.durable);
        assert_eq!(block_on(store.get::<i32>("c", "k")).unwrap(), Some(1));
        assert_eq!(block_on(store.get::<i32>("c", "a")).unwrap(), None);
        assert_eq!(block_on(store.get::<i32>("c", "b")).unwrap(), Some(2));
    }

    #[test]
    fn works_without_a_tokio_runtime() {
        // Polled once with a no-op waker: without a runtime every operation completes inline.
        fn poll_once<F: Future>(f: F) -> F::Output {
            let mut f = std::pin::pin!(f);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match f.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(v) => v,
                std::task::Poll::Pending => panic!("an operation needed a runtime"),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open_path(dir.path().join("kv.redb")).unwrap();
        poll_once(store.put("c", "k", &1)).unwrap();
        assert_eq!(poll_once(store.get::<i32>("c", "k")).unwrap(), Some(1));
        assert_eq!(poll_once(store.clear("c")).unwrap(), 1);
        poll_once(store.close()).unwrap();
    }

    #[test]
    fn foreign_tables_are_left_alone_and_bad_tables_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open_path(dir.path().join("kv.redb")).unwrap();
        let db = store.database().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let foreign: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("app");
            txn.open_table(foreign).unwrap().insert(1, 2).unwrap();
            // A collection table of the wrong types.
            let wrong: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("c:wrong");
            txn.open_table(wrong).unwrap().insert(1, 2).unwrap();
        }
        txn.commit().unwrap();
        drop(db);
        let e = block_on(store.get_bytes("wrong", "k")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert_eq!(e.collection(), Some("wrong"));
        let e = block_on(store.put("wrong", "k", &1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        let e = block_on(store.scan_opts("wrong", ScanOptions::default())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        // destroy removes the store's tables, even a broken one, and nothing else.
        block_on(store.put("c", "k", &1)).unwrap();
        block_on(store.destroy()).unwrap();
        assert!(block_on(store.collections()).unwrap().is_empty());
        let db = store.database().unwrap();
        let txn = db.begin_read().unwrap();
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|h| h.name().to_owned())
            .collect();
        assert_eq!(names, vec!["app".to_owned(), META_TABLE_NAME.to_owned()]);
    }

    #[test]
    fn other_format_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META_TABLE)
                .unwrap()
                .insert(META_FORMAT_KEY, 99)
                .unwrap();
            txn.commit().unwrap();
        }
        let e = DiskStore::open_path(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("format 99"), "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn cull_clear_and_listing_skip_expired_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open_path(dir.path().join("kv.redb")).unwrap();
        let ttl = Duration::from_millis(50);
        block_on(async {
            store.put_with_ttl("gone", "a", &1, ttl).await.unwrap();
            store.put_with_ttl("mixed", "a", &1, ttl).await.unwrap();
            store.put("mixed", "b", &1).await.unwrap();
            store.put_with_ttl("cleared", "a", &1, ttl).await.unwrap();
            store.put("cleared", "b", &1).await.unwrap();
            std::thread::sleep(ttl * 2);
            assert_eq!(store.collections().await.unwrap(), vec!["cleared", "mixed"]);
            assert_eq!(
                store.clear("cleared").await.unwrap(),
                1,
                "only live entries count"
            );
            assert_eq!(store.cull().await.unwrap(), 2);
            assert_eq!(store.cull().await.unwrap(), 0);
            // The table `gone` was left empty by the cull and removed.
            let db = store.database().unwrap();
            let txn = db.begin_read().unwrap();
            assert!(
                read_table(&txn, &format::table_name("gone"))
                    .unwrap()
                    .is_none()
            );
            assert!(
                read_table(&txn, &format::table_name("mixed"))
                    .unwrap()
                    .is_some()
            );
        });
    }

    #[test]
    fn scans_page_and_stop_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open_path(dir.path().join("kv.redb")).unwrap();
        block_on(async {
            store
                .put_many("c", &[("a1", 1), ("a2", 2), ("a3", 3), ("b", 4)])
                .await
                .unwrap();
            let opts = ScanOptions::default().with_prefix("a").with_page_size(2);
            let page = store.scan_opts("c", opts.clone()).await.unwrap();
            let keys: Vec<&str> = page.items.iter().map(|i| i.key.as_str()).collect();
            assert_eq!(keys, ["a1", "a2"]);
            let page = store
                .scan_opts("c", opts.with_cursor(page.cursor))
                .await
                .unwrap();
            let keys: Vec<&str> = page.items.iter().map(|i| i.key.as_str()).collect();
            assert_eq!(keys, ["a3"]);
            assert_eq!(page.cursor, None);
            // A huge page size allocates nothing up front.
            let all = ScanOptions::default().with_page_size(usize::MAX);
            assert_eq!(store.scan_opts("c", all).await.unwrap().items.len(), 4);
            // A cursor of another prefix is refused.
            let bad = ScanOptions::default()
                .with_prefix("b")
                .with_cursor(Some(scan::cursor_after("a1")));
            let e = store.scan_opts("c", bad).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        });
    }

    #[test]
    fn close_is_final_for_every_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let store = DiskStore::open_path(&path).unwrap();
        let clone = store.clone();
        block_on(store.close()).unwrap();
        block_on(store.close()).unwrap();
        for e in [
            block_on(clone.get_bytes("c", "k")).unwrap_err(),
            block_on(clone.put("c", "k", &1)).unwrap_err(),
            block_on(clone.cull()).unwrap_err(),
            block_on(clone.collections()).unwrap_err(),
            clone.database().unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
        }
        assert!(format!("{clone:?}").contains("closed: true"));
        // The file was released.
        drop(DiskStore::open_path(&path).unwrap());
    }

    #[test]
    fn large_values_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open_path(dir.path().join("kv.redb")).unwrap();
        block_on(async {
            let key = "k".repeat(100_000);
            let value = Bytes::from(vec![7u8; 3 * 1024 * 1024]);
            store.put_bytes("c", &key, value.clone()).await.unwrap();
            assert_eq!(store.get_bytes("c", &key).await.unwrap(), Some(value));
        });
    }
}
