//! The store: a directory, one redb file per collection, opened lazily and cached.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, ready};
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use kv_core::envelope::{self, Meta};
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl, scan,
    ttl,
};
use redb::{
    Database, DatabaseError, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    StorageError, TableError, WriteTransaction,
};

use crate::config::{Durability, MultiDiskConfig, MultiDiskStoreBuilder};
use crate::format::{
    self, DATA_TABLE, FILE_META_TABLE, FORMAT_VERSION, LOCK_FILE, META_COLLECTION_KEY, META_FILE,
    META_FORMAT_KEY, META_NEXT_VERSION_KEY, STORE_META_TABLE, VERSION_BLOCK,
};

use kv_engine::blocking::run_blocking;
use kv_engine::fs::LockError;

const STORE: &str = crate::SCHEME;

type ReadTable = ReadOnlyTable<&'static str, &'static [u8]>;

/// A durable key-value store in a directory with one redb file per collection. Cloning is
/// cheap and shares the files.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_multidisk::MultiDiskStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = MultiDiskStore::open_path(dir.path().join("kv"))?;
/// store.put("ages", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("ages", "alice").await?, Some(30));
/// assert!(dir.path().join("kv/c_ages.redb").exists());
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct MultiDiskStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: MultiDiskConfig,
    /// `None` once closed. Every operation holds the read lock while it runs; `clear`,
    /// `destroy` and `close`, which remove or close files, take the write lock.
    state: RwLock<Option<Open>>,
}

struct Open {
    dir: PathBuf,
    /// Held (locked) while the store is open.
    lock: kv_engine::fs::FileLock,
    meta: Database,
    versions: Mutex<Versions>,
    /// Open collection files by file name.
    files: Mutex<HashMap<String, Arc<Database>>>,
}

#[derive(Debug)]
struct Versions {
    next: u64,
    reserved: u64,
}

impl fmt::Debug for MultiDiskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let closed = self.read_state().is_none();
        f.debug_struct("MultiDiskStore")
            .field("path", &self.inner.config.path)
            .field("durability", &self.inner.config.durability)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &closed)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MultiDiskStore {
    /// Opens (or creates) the store of a `multidisk://DIR` URL (see
    /// [`MultiDiskConfig::from_url`]).
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL or a path that cannot be a directory;
    /// [`ErrorKind::Unavailable`] (not temporary) if another process — or another open store
    /// of this process — has the directory open; [`ErrorKind::Corrupt`] for a damaged metadata
    /// file.
    ///
    /// ```
    /// use kv_store_multidisk::MultiDiskStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("multidisk://{}?durability=none", dir.path().join("kv").display());
    /// let store = MultiDiskStore::open(&url)?;
    /// assert!(!kv_core::KvStore::info(&store).capability.durable);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = MultiDiskConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the store in the directory `path`, with the default settings.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = kv_store_multidisk::MultiDiskStore::open_path(dir.path())?;
    /// assert_eq!(store.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(MultiDiskConfig::new(path))
    }

    /// A builder for the store in the directory `path`.
    pub fn builder(path: impl Into<PathBuf>) -> MultiDiskStoreBuilder {
        MultiDiskStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: MultiDiskConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let open = open_dir(&config).map_err(open_context)?;
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: std::time::Duration::from_micros(1),
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
        Ok(MultiDiskStore {
            inner: Arc::new(Inner {
                info,
                config,
                state: RwLock::new(Some(open)),
            }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_multidisk::MultiDiskStore::open_path(dir.path())?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &MultiDiskConfig {
        &self.inner.config
    }

    /// The redb database of a collection (created if missing), for inspection, tests and
    /// tools. Its data table is [`format::DATA_TABLE`](crate::format::DATA_TABLE); values
    /// written there must be kv envelopes or the store reports them as
    /// [`ErrorKind::Corrupt`]. While a handle is alive, `clear` and `close` cannot close the
    /// file (the last handle's drop does).
    pub fn database(&self, collection: &str) -> Result<Arc<Database>> {
        let name = self.inner.info.resolve(collection);
        let state = self.read_state();
        let open = state.as_ref().ok_or_else(|| closed(Operation::Get))?;
        open.file(name, true)?
            .ok_or_else(|| Error::new(ErrorKind::Backend, "collection file missing"))
    }

    fn read_state(&self) -> RwLockReadGuard<'_, Option<Open>> {
        self.inner.read_state()
    }
}

impl Inner {
    fn read_state(&self) -> RwLockReadGuard<'_, Option<Open>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn durability(&self) -> redb::Durability {
        match self.config.durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        }
    }

    /// Runs `f` with the open state under the read lock.
    fn with_open<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        f: impl FnOnce(&Open) -> Result<T>,
    ) -> Result<T> {
        let state = self.read_state();
        let r = match state.as_ref() {
            Some(open) => f(open),
            None => Err(Error::new(ErrorKind::Closed, "the store was closed")),
        };
        r.map_err(|e| e.with_context(STORE, op, collection, key))
    }

    // ----- reads -----

    fn get(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        let name = self.info.resolve(collection);
        self.with_open(Operation::Get, Some(name), Some(key), |open| {
            let Some(table) = open.read_table(name)? else {
                return Ok(None);
            };
            read_entry(&table, key, &mut None)
        })
    }

    fn get_many(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let op = Operation::GetMany;
        let name = self.info.resolve(collection);
        self.with_open(op, Some(name), None, |open| {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let Some(table) = open.read_table(name)? else {
                return Ok(vec![None; keys.len()]);
            };
            let mut now = None;
            keys.iter()
                .map(|k| read_entry(&table, k, &mut now).map_err(|e| e.with_key(k)))
                .collect()
        })
    }

    fn ttl(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        let name = self.info.resolve(collection);
        self.with_open(Operation::Ttl, Some(name), Some(key), |open| {
            let Some(table) = open.read_table(name)? else {
                return Ok(None);
            };
            let Some(guard) = table.get(key).map_err(db_error)? else {
                return Ok(None);
            };
            let (meta, _) = envelope::decode_meta(guard.value())?;
            Ok(match meta.expires_at {
                None => Some(Ttl::Never),
                Some(at) => at
                    .duration_since(Timestamp::now())
                    .filter(|left| !left.is_zero())
                    .map(Ttl::Remaining),
            })
        })
    }

    fn scan(&self, collection: &str, opts: &ScanOptions) -> Result<ScanPage> {
        let name = self.info.resolve(collection);
        self.with_open(Operation::Scan, Some(name), None, |open| {
            let after = scan::key_after(opts)?;
            let Some(table) = open.read_table(name)? else {
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
            for item in table.range::<&str>((lower, upper)).map_err(db_error)? {
                let (k, v) = item.map_err(db_error)?;
                if items.len() == limit {
                    cursor = items.last().map(|i| scan::cursor_after(&i.key));
                    break;
                }
                let key = k.value();
                let raw = v.value();
                let (meta, header) = envelope::decode_meta(raw).map_err(|e| e.with_key(key))?;
                if !is_live(&meta, &mut now) {
                    continue;
                }
                let entry = (!opts.keys_only).then(|| meta.into_entry(value_of(raw, header)));
                items.push(ScanItem::new(key.to_owned(), entry));
            }
            Ok(ScanPage::new(items, cursor))
        })
    }

    fn collections(&self) -> Result<Vec<String>> {
        self.with_open(Operation::Collections, None, None, |open| {
            let mut names = Vec::new();
            let mut now = None;
            for (file, db) in open.all_files()? {
                let Some(name) = collection_name(&db).map_err(|e| in_file(e, &file))? else {
                    continue;
                };
                let txn = db.begin_read().map_err(db_error)?;
                let table = match txn.open_table(DATA_TABLE) {
                    Ok(t) => t,
                    Err(TableError::TableDoesNotExist(_)) => continue,
                    Err(e) => return Err(table_error(e).with_collection(&name)),
                };
                if has_live_entry(&table, &mut now).map_err(|e| e.with_collection(&name))? {
                    names.push(name);
                }
            }
            names.sort_unstable();
            Ok(names)
        })
    }

    // ----- writes (run on the blocking pool) -----

    fn put(
        &self,
        collection: &str,
        key: &str,
        value: &[u8],
        mode: &PutMode,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let name = self.info.resolve(collection);
        self.with_open(Operation::Put, Some(name), Some(key), |open| {
            let db = open.file(name, true)?.ok_or_else(missing)?;
            let version = open.take_versions(1)?;
            let txn = self.begin_write(&db)?;
            {
                let mut table = txn.open_table(DATA_TABLE).map_err(table_error)?;
                match mode {
                    PutMode::IfAbsent => {
                        if let Some(old) = table.get(key).map_err(db_error)? {
                            let (meta, _) = envelope::decode_meta(old.value())?;
                            if is_live(&meta, &mut Some(now)) {
                                return Err(Error::new(
                                    ErrorKind::ConditionFailed,
                                    "an entry with this key exists",
                                ));
                            }
                        }
                    }
                    PutMode::IfVersion(expected) => {
                        let current = match table.get(key).map_err(db_error)? {
                            Some(old) => {
                                let (meta, _) = envelope::decode_meta(old.value())?;
                                meta.version.filter(|_| is_live(&meta, &mut Some(now)))
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
                let meta = Meta {
                    expires_at,
                    created_at: Some(now),
                    version: Some(version),
                };
                write_entry(&mut table, key, &meta, value)?;
            }
            txn.commit().map_err(db_error)
        })
    }

    fn put_many(
        &self,
        collection: &str,
        entries: &[(&str, &[u8])],
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let name = self.info.resolve(collection);
        self.with_open(Operation::PutMany, Some(name), None, |open| {
            if entries.is_empty() {
                return Ok(());
            }
            let db = open.file(name, true)?.ok_or_else(missing)?;
            let first = open.take_versions(entries.len() as u64)?;
            let txn = self.begin_write(&db)?;
            {
                let mut table = txn.open_table(DATA_TABLE).map_err(table_error)?;
                for (version, (key, value)) in (first..).zip(entries) {
                    let meta = Meta {
                        expires_at,
                        created_at: Some(now),
                        version: Some(version),
                    };
                    write_entry(&mut table, key, &meta, value).map_err(|e| e.with_key(key))?;
                }
            }
            txn.commit().map_err(db_error)
        })
    }

    fn delete(&self, op: Operation, collection: &str, keys: &[&str]) -> Result<u64> {
        let name = self.info.resolve(collection);
        let single = (op == Operation::Delete)
            .then(|| keys.first().copied())
            .flatten();
        self.with_open(op, Some(name), single, |open| {
            if keys.is_empty() {
                return Ok(0);
            }
            let Some(db) = open.file(name, false)? else {
                return Ok(0);
            };
            let txn = self.begin_write(&db)?;
            let mut live = 0;
            let mut changed = false;
            {
                let mut table = txn.open_table(DATA_TABLE).map_err(table_error)?;
                let mut now = None;
                for key in keys {
                    if let Some(old) = table.remove(*key).map_err(db_error)? {
                        changed = true;
                        match envelope::decode_meta(old.value()) {
                            Ok((meta, _)) if !is_live(&meta, &mut now) => {}
                            _ => live += 1,
                        }
                    }
                }
            }
            if changed {
                txn.commit().map_err(db_error)?;
            } else {
                txn.abort().map_err(db_error)?;
            }
            Ok(live)
        })
    }

    fn cull(&self) -> Result<u64> {
        self.with_open(Operation::Cull, None, None, |open| {
            let now = Timestamp::now();
            let mut removed = 0u64;
            for (file, db) in open.all_files()? {
                if collection_name(&db)
                    .map_err(|e| in_file(e, &file))?
                    .is_none()
                {
                    continue;
                }
                let txn = self.begin_write(&db)?;
                let before = removed;
                {
                    let mut table = txn.open_table(DATA_TABLE).map_err(table_error)?;
                    table
                        .retain(|_, v| match envelope::decode_meta(v) {
                            Ok((meta, _)) if meta.is_expired_at(now) => {
                                removed += 1;
                                false
                            }
                            _ => true,
                        })
                        .map_err(db_error)?;
                }
                if removed > before {
                    txn.commit().map_err(db_error)?;
                } else {
                    txn.abort().map_err(db_error)?;
                }
            }
            Ok(removed)
        })
    }

    /// Counts the live entries of a collection and removes its file.
    fn clear(&self, collection: &str) -> Result<u64> {
        let name = self.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, Operation::Clear, Some(name), None);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let open = state
            .as_mut()
            .ok_or_else(|| ctx(Error::new(ErrorKind::Closed, "the store was closed")))?;
        let Some(db) = open.file(name, false).map_err(ctx)? else {
            return Ok(0);
        };
        let live = count_live(&db).map_err(ctx)?;
        drop(db);
        let file = format::file_name(name);
        open.remove_file(&file).map_err(ctx)?;
        sync_dir(&open.dir).map_err(ctx)?;
        Ok(live)
    }

    /// Removes every collection file of the store (checked by the name it holds).
    fn destroy(&self) -> Result<()> {
        let ctx = |e: Error| e.with_context(STORE, Operation::Destroy, None, None);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let open = state
            .as_mut()
            .ok_or_else(|| ctx(Error::new(ErrorKind::Closed, "the store was closed")))?;
        let files = open.all_files().map_err(ctx)?;
        let mut removed = false;
        for (file, db) in files {
            let ours = collection_name(&db)
                .ok()
                .flatten()
                .is_some_and(|n| format::file_name(&n) == file);
            drop(db);
            if ours {
                open.remove_file(&file).map_err(ctx)?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&open.dir).map_err(ctx)?;
        }
        Ok(())
    }

    fn close(&self) -> Result<()> {
        let taken = self
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(open) = taken else {
            return Ok(());
        };
        let ctx = |e: Error| e.with_store(STORE).with_operation(Operation::Close);
        let files = std::mem::take(&mut *lock(&open.files));
        let mut result = Ok(());
        for (_, db) in files {
            if let Ok(db) = Arc::try_unwrap(db)
                && let Err(e) = db.close()
            {
                result = Err(ctx(db_error(e)));
            }
        }
        if let Err(e) = open.meta.close() {
            result = result.and(Err(ctx(db_error(e))));
        }
        let _ = open.lock.unlock();
        result
    }

    fn begin_write(&self, db: &Database) -> Result<WriteTransaction> {
        let mut txn = db.begin_write().map_err(db_error)?;
        let durability = self.durability();
        if !matches!(durability, redb::Durability::Immediate) {
            txn.set_durability(durability).map_err(db_error)?;
        }
        Ok(txn)
    }
}

impl Open {
    fn path_of(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The database of a collection: from the cache, or opened (created if `create`).
    fn file(&self, collection: &str, create: bool) -> Result<Option<Arc<Database>>> {
        let file = format::file_name(collection);
        let mut files = lock(&self.files);
        if let Some(db) = files.get(&file) {
            return Ok(Some(db.clone()));
        }
        let path = self.path_of(&file);
        let exists = path.exists();
        if !exists && !create {
            return Ok(None);
        }
        let db = open_redb(&path, None)?;
        match collection_name(&db)? {
            Some(found) if found == collection => {}
            Some(found) => {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{} holds collection {found:?}, not {collection:?}",
                        path.display()
                    ),
                ));
            }
            None => {
                let txn = db.begin_write().map_err(db_error)?;
                {
                    let mut meta = txn.open_table(FILE_META_TABLE).map_err(table_error)?;
                    meta.insert(META_FORMAT_KEY, "1").map_err(db_error)?;
                    meta.insert(META_COLLECTION_KEY, collection)
                        .map_err(db_error)?;
                    txn.open_table(DATA_TABLE).map_err(table_error)?;
                }
                txn.commit().map_err(db_error)?;
                if !exists {
                    sync_dir(&self.dir)?;
                }
            }
        }
        let db = Arc::new(db);
        files.insert(file, db.clone());
        Ok(Some(db))
    }

    fn read_table(&self, collection: &str) -> Result<Option<ReadTable>> {
        let Some(db) = self.file(collection, false)? else {
            return Ok(None);
        };
        let txn = db.begin_read().map_err(db_error)?;
        match txn.open_table(DATA_TABLE) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(table_error(e)),
        }
    }

    /// Every collection file of the directory, opened (and cached).
    fn all_files(&self) -> Result<Vec<(String, Arc<Database>)>> {
        let mut names = Vec::new();
        for item in std::fs::read_dir(&self.dir).map_err(Error::from)? {
            let item = item.map_err(Error::from)?;
            if let Some(name) = item.file_name().to_str()
                && format::is_collection_file(name)
            {
                names.push(name.to_owned());
            }
        }
        names.sort_unstable();
        let mut out = Vec::with_capacity(names.len());
        let mut files = lock(&self.files);
        for name in names {
            let db = match files.get(&name) {
                Some(db) => db.clone(),
                None => {
                    let db = Arc::new(open_redb(&self.path_of(&name), None)?);
                    files.insert(name.clone(), db.clone());
                    db
                }
            };
            out.push((name, db));
        }
        Ok(out)
    }

    /// Closes (if cached) and deletes a collection file. The caller holds the state's write
    /// lock, so no operation uses the database.
    fn remove_file(&mut self, file: &str) -> Result<()> {
        if let Some(db) = lock(&self.files).remove(file)
            && let Ok(db) = Arc::try_unwrap(db)
        {
            db.close().map_err(db_error)?;
        }
        match std::fs::remove_file(self.path_of(file)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::from(e)),
        }
    }

    /// `n` consecutive new versions; returns the first. Raises the reserve in the metadata
    /// file (durably) before handing out versions beyond it.
    fn take_versions(&self, n: u64) -> Result<u64> {
        let exhausted = || Error::new(ErrorKind::Backend, "the version counter is exhausted");
        let mut v = lock(&self.versions);
        let first = v.next;
        let end = first.checked_add(n).ok_or_else(exhausted)?;
        if end > v.reserved {
            let raise = end.checked_add(VERSION_BLOCK).ok_or_else(exhausted)?;
            let txn = self.meta.begin_write().map_err(db_error)?;
            {
                let mut t = txn.open_table(STORE_META_TABLE).map_err(table_error)?;
                t.insert(META_NEXT_VERSION_KEY, raise).map_err(db_error)?;
            }
            txn.commit().map_err(db_error)?;
            v.reserved = raise;
        }
        v.next = end;
        Ok(first)
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

fn missing() -> Error {
    Error::new(
        ErrorKind::Backend,
        "the collection file could not be created",
    )
}

fn in_file(e: Error, file: &str) -> Error {
    let msg = format!("{file}: {}", e.message());
    Error::new(e.kind(), msg).temporary(e.is_temporary())
}

fn open_dir(config: &MultiDiskConfig) -> Result<Open> {
    let dir = config.path.clone();
    let p = dir.display();
    let io = |what: &str, e: std::io::Error| {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            Io::PermissionDenied
            | Io::NotADirectory
            | Io::AlreadyExists
            | Io::ReadOnlyFilesystem
            | Io::IsADirectory => ErrorKind::Config,
            _ => ErrorKind::Backend,
        };
        Error::new(kind, format!("cannot {what} {p}: {e}"))
            .temporary(false)
            .with_source(e)
    };
    std::fs::create_dir_all(&dir).map_err(|e| io("create the directory", e))?;
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("{p} is not a directory"),
        ));
    }
    let lock_path = dir.join(LOCK_FILE);
    let lock_file = kv_engine::fs::lock_file(&lock_path).map_err(|e| match e {
        LockError::Locked => {
            kv_engine::fs::locked(&dir, Some("a multidisk directory has one user at a time"))
        }
        LockError::Open(e) => io("create the lock file in", e),
        LockError::Lock(e) => io("lock", e),
    })?;
    let meta = open_redb(&dir.join(META_FILE), config.cache_size)?;
    let next = init_meta(&meta)?;
    Ok(Open {
        dir,
        lock: lock_file,
        meta,
        versions: Mutex::new(Versions {
            next,
            reserved: next,
        }),
        files: Mutex::new(HashMap::new()),
    })
}

fn open_redb(path: &Path, cache_size: Option<usize>) -> Result<Database> {
    let mut builder = redb::Builder::new();
    if let Some(bytes) = cache_size {
        builder.set_cache_size(bytes);
    }
    // redb may panic on a file damaged outside redb; the half-opened database is dropped by
    // the unwind, so turning the panic into an error is safe.
    match catch_unwind(AssertUnwindSafe(|| builder.create(path))) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(e, path)),
        Err(_) => Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "redb failed while reading {}: the file is damaged",
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
            format!("{p} is locked by another process (or by another open store in this process)"),
        )
        .temporary(false),
        DatabaseError::Storage(StorageError::Io(io)) => {
            use std::io::ErrorKind as Io;
            let (kind, what) = match io.kind() {
                Io::PermissionDenied => (ErrorKind::Config, "permission denied"),
                Io::IsADirectory => (ErrorKind::Config, "it is a directory"),
                Io::InvalidData => (ErrorKind::Corrupt, "it is not a redb database"),
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

/// Checks (or writes) the format version of the store's metadata file; returns the version
/// counter's start.
fn init_meta(db: &Database) -> Result<u64> {
    let txn = db.begin_write().map_err(db_error)?;
    let next = {
        let mut t = txn.open_table(STORE_META_TABLE).map_err(table_error)?;
        let format = t.get(META_FORMAT_KEY).map_err(db_error)?.map(|g| g.value());
        match format {
            Some(FORMAT_VERSION) => {}
            Some(f) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "the directory is in kv-store-multidisk format {f}; this version reads format {FORMAT_VERSION}"
                    ),
                ));
            }
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

/// The collection a file holds (`None` for a file whose metadata was never written: created
/// by a store that crashed before its first commit, so it holds no data).
fn collection_name(db: &Database) -> Result<Option<String>> {
    let txn = db.begin_read().map_err(db_error)?;
    let t = match txn.open_table(FILE_META_TABLE) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(table_error(e)),
    };
    match t.get(META_FORMAT_KEY).map_err(db_error)? {
        None => return Ok(None),
        Some(f) if f.value() == "1" => {}
        Some(f) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "collection file in kv-store-multidisk format {}; this version reads format {FORMAT_VERSION}",
                    f.value()
                ),
            ));
        }
    }
    Ok(t.get(META_COLLECTION_KEY)
        .map_err(db_error)?
        .map(|g| g.value().to_owned()))
}

/// Flushes the directory entry of a created or deleted file.
fn sync_dir(dir: &Path) -> Result<()> {
    kv_engine::fs::sync_dir(dir).map_err(Error::from)
}

// ----- redb errors -----

fn db_error(e: impl Into<redb::Error>) -> Error {
    let e = match e.into() {
        redb::Error::Io(io) => {
            let like = Error::from(std::io::Error::from(io.kind()));
            return Error::new(like.kind(), "redb i/o error")
                .temporary(like.is_temporary())
                .with_source(io);
        }
        other => other,
    };
    let kind = match &e {
        redb::Error::Corrupted(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. } => ErrorKind::Corrupt,
        redb::Error::ValueTooLarge(_) => ErrorKind::ValueTooLarge,
        redb::Error::DatabaseClosed => ErrorKind::Closed,
        redb::Error::UpgradeRequired(_) => ErrorKind::Config,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("redb: {e}"))
}

fn table_error(e: TableError) -> Error {
    match e {
        TableError::Storage(s) => db_error(s),
        TableError::TableTypeMismatch { .. }
        | TableError::TableIsMultimap(_)
        | TableError::TypeDefinitionChanged { .. } => Error::new(
            ErrorKind::Corrupt,
            format!("a redb table does not hold kv entries: {e}"),
        ),
        other => db_error(other),
    }
}

// ----- entries -----

#[inline]
fn is_live(meta: &Meta, now: &mut Option<Timestamp>) -> bool {
    meta.expires_at
        .is_none_or(|at| at > *now.get_or_insert_with(Timestamp::now))
}

#[inline]
fn value_of(raw: &[u8], header: usize) -> Bytes {
    Bytes::copy_from_slice(raw.get(header..).unwrap_or_default())
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

/// True if the table holds an entry that has not expired (undecodable bytes count).
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

fn count_live(db: &Database) -> Result<u64> {
    let txn = db.begin_read().map_err(db_error)?;
    let table = match txn.open_table(DATA_TABLE) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(table_error(e)),
    };
    if table.is_empty().map_err(db_error)? {
        return Ok(0);
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
    Ok(live)
}

fn write_entry(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    meta: &Meta,
    value: &[u8],
) -> Result<()> {
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

// ----- running writes -----

impl KvStore for MultiDiskStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        ready(self.inner.get(collection, key))
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        ready(self.inner.get_many(collection, keys))
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let op = Operation::Put;
        let now = Timestamp::now();
        let checked =
            ttl::expires_at(now, opts.ttl).and_then(|e| check_mode(&opts.mode).map(|()| e));
        let inner = self.inner.clone();
        let collection = collection.to_owned();
        let key = key.to_owned();
        async move {
            let expires_at = checked.map_err(|e| {
                e.with_context(STORE, op, Some(inner.info.resolve(&collection)), Some(&key))
            })?;
            run_blocking(STORE, op, move || {
                inner.put(&collection, &key, &value, &opts.mode, now, expires_at)
            })
            .await
        }
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let op = Operation::PutMany;
        let now = Timestamp::now();
        let checked = ttl::expires_at(now, opts.ttl);
        let inner = self.inner.clone();
        let collection = collection.to_owned();
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        async move {
            let expires_at = checked.map_err(|e| {
                e.with_context(STORE, op, Some(inner.info.resolve(&collection)), None)
            })?;
            run_blocking(STORE, op, move || {
                let refs: Vec<(&str, &[u8])> =
                    entries.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
                inner.put_many(&collection, &refs, now, expires_at)
            })
            .await
        }
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let inner = self.inner.clone();
        let collection = collection.to_owned();
        let key = key.to_owned();
        async move {
            run_blocking(STORE, Operation::Delete, move || {
                inner.delete(Operation::Delete, &collection, &[key.as_str()])
            })
            .await
            .map(|n| n > 0)
        }
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let inner = self.inner.clone();
        let collection = collection.to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        run_blocking(STORE, Operation::DeleteMany, move || {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            inner.delete(Operation::DeleteMany, &collection, &refs)
        })
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        ready(self.inner.ttl(collection, key))
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        ready(self.inner.scan(collection, &opts))
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        ready(self.inner.collections())
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let inner = self.inner.clone();
        let collection = collection.to_owned();
        run_blocking(STORE, Operation::Clear, move || inner.clear(&collection))
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        let inner = self.inner.clone();
        run_blocking(STORE, Operation::Destroy, move || inner.destroy())
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        let inner = self.inner.clone();
        run_blocking(STORE, Operation::Cull, move || inner.cull())
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        let inner = self.inner.clone();
        run_blocking(STORE, Operation::Close, move || inner.close())
    }
}
