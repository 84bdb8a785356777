//! The store: the whole data in memory, one JSON file rewritten atomically on every write.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::future::{Future, ready};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl, scan,
    ttl,
};

use crate::config::{Durability, JsonFileConfig, JsonFileStoreBuilder};
use crate::format::{self, Data, Item, Slot, Value};

use kv_engine::blocking::run_blocking;
use kv_engine::fs::{LockError, with_suffix};

const STORE: &str = crate::SCHEME;

/// A key-value store in **one human-readable JSON file** (spoonbill's JSON store): the whole
/// data is loaded in memory when the store opens, and every write rewrites the file
/// atomically (temporary file, `fsync`, rename, `fsync` of the directory) before it returns.
/// Cloning is cheap and shares the store.
///
/// A lock file (`PATH.lock`) keeps a second process — or a second store of this process —
/// from opening the same file: it fails at once with "locked by another process".
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_jsonfile::JsonFileStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = JsonFileStore::open_path(dir.path().join("kv.json"))?;
/// store.put("users", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("users", "alice").await?, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct JsonFileStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: JsonFileConfig,
    /// `None` once closed.
    state: RwLock<Option<Arc<Open>>>,
}

/// An open file: the data, and the writer of the file (which holds the lock file).
struct Open {
    /// The absolute path of the JSON file.
    path: PathBuf,
    durability: Durability,
    data: RwLock<Snapshot>,
    file: Mutex<FileWriter>,
}

struct Snapshot {
    data: Data,
    /// Raised by every change.
    generation: u64,
}

struct FileWriter {
    /// Held (locked) for the store's lifetime; closing it releases the lock.
    _lock: kv_engine::fs::FileLock,
    /// The generation the file holds.
    written: u64,
}

impl fmt::Debug for JsonFileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileStore")
            .field("path", &self.inner.config.path)
            .field("durability", &self.inner.config.durability)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &self.state().is_none())
            .finish()
    }
}

impl JsonFileStore {
    /// Opens (or creates) the store of a `jsonfile://PATH` URL (see
    /// [`JsonFileConfig::from_url`]).
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a missing directory, a path that is a
    /// directory, or a JSON file of another format; [`ErrorKind::Unavailable`] (not temporary)
    /// if another process — or another open store of this process — has the file open;
    /// [`ErrorKind::Corrupt`] for a file that is not JSON.
    ///
    /// ```
    /// use kv_store_jsonfile::JsonFileStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("jsonfile://{}", dir.path().join("kv.json").display());
    /// let store = JsonFileStore::open(&url)?;
    /// let second = JsonFileStore::open(&url).unwrap_err();
    /// assert!(second.to_string().contains("locked by another process"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = JsonFileConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the store in the file at `path`, with the default settings.
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(JsonFileConfig::new(path))
    }

    /// A builder for the store in the file at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> JsonFileStoreBuilder {
        JsonFileStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: JsonFileConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let open = open_file(&config).map_err(open_context)?;
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
        Ok(JsonFileStore {
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
    /// let store = kv_store_jsonfile::JsonFileStore::open_path(dir.path().join("kv.json"))?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The JSON file, as configured.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &JsonFileConfig {
        &self.inner.config
    }

    /// Writes the data to the file now (atomically and durably), if it changed since the last
    /// write. Only needed with [`Durability::OnClose`]; with the default durability every
    /// write is already in the file. Blocks while the file is written.
    ///
    /// ```
    /// use kv_store_jsonfile::{Durability, JsonFileStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("kv.json");
    /// let store = JsonFileStore::builder(&path).durability(Durability::OnClose).open()?;
    /// store.sync().put("c", "k", &1)?;
    /// assert!(!std::fs::read_to_string(&path)?.contains("\"k\""));
    /// store.flush()?;
    /// assert!(std::fs::read_to_string(&path)?.contains("\"k\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<()> {
        let op = Operation::Close;
        let open = self.open_state(op)?;
        open.flush().map_err(|e| e.with_store(STORE))
    }

    /// Reads the file again, replacing the data in memory (changes not yet written with
    /// [`Durability::OnClose`] are lost). For tools that edit the file while the store is
    /// open — this store's lock only keeps other kv stores out.
    pub fn reload(&self) -> Result<()> {
        let op = Operation::Open;
        let open = self.open_state(op)?;
        let mut writer = open.file.lock().unwrap_or_else(PoisonError::into_inner);
        let data = read_data(&open.path)?.unwrap_or_else(empty_data);
        let mut snap = open.data.write().unwrap_or_else(PoisonError::into_inner);
        snap.data = data;
        snap.generation += 1;
        writer.written = snap.generation;
        Ok(())
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

    /// Runs a read against the data.
    fn read<T>(
        &self,
        op: Operation,
        collection: &str,
        key: Option<&str>,
        f: impl FnOnce(&Data, &str, Timestamp) -> Result<T>,
    ) -> Result<T> {
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), key);
        let open = self.open_state(op).map_err(ctx)?;
        let snap = open.data.read().unwrap_or_else(PoisonError::into_inner);
        f(&snap.data, name, Timestamp::now()).map_err(ctx)
    }

    /// Runs a change of the data, then (with [`Durability::Immediate`]) writes the file on
    /// tokio's blocking pool (or inline outside a runtime). `f` returns its result and whether
    /// it changed anything.
    fn write<T, F>(
        &self,
        op: Operation,
        collection: Option<String>,
        key: Option<String>,
        f: F,
    ) -> impl Future<Output = Result<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Data) -> Result<(T, bool)> + Send + 'static,
    {
        let open = self.state();
        async move {
            let ctx = |e: Error| e.with_context(STORE, op, collection.as_deref(), key.as_deref());
            let open = open.ok_or_else(|| closed(op)).map_err(ctx)?;
            let durability = open.durability;
            let work = move || -> Result<T> {
                let mut snap = open.data.write().unwrap_or_else(PoisonError::into_inner);
                match open.durability {
                    // The change is made on a copy and becomes visible only once the file
                    // holds it: a write that fails (disk full, permissions) returns its error
                    // and leaves nothing behind, in memory or on disk. The copy costs no more
                    // than encoding the whole file, which every durable write does anyway.
                    Durability::Immediate => {
                        let mut next = snap.data.clone();
                        let (out, changed) = f(&mut next)?;
                        if !changed {
                            return Ok(out);
                        }
                        let generation = snap.generation + 1;
                        open.persist(&format::encode_file(&next)?, generation)?;
                        snap.data = next;
                        snap.generation = generation;
                        Ok(out)
                    }
                    Durability::OnClose => {
                        let (out, changed) = f(&mut snap.data)?;
                        if changed {
                            snap.generation += 1;
                        }
                        Ok(out)
                    }
                }
            };
            match durability {
                Durability::Immediate => run_blocking(STORE, op, work).await.map_err(ctx),
                Durability::OnClose => work().map_err(ctx),
            }
        }
    }
}

impl Open {
    /// Writes `bytes` (the data at `generation`) unless the file already holds a later one.
    fn persist(&self, bytes: &[u8], generation: u64) -> Result<()> {
        let mut writer = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.written >= generation {
            return Ok(());
        }
        write_atomic(&self.path, bytes)?;
        writer.written = generation;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let (bytes, generation) = {
            let snap = self.data.read().unwrap_or_else(PoisonError::into_inner);
            let written = self
                .file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .written;
            if written >= snap.generation {
                return Ok(());
            }
            (format::encode_file(&snap.data)?, snap.generation)
        };
        self.persist(&bytes, generation)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // With `OnClose`, the last handle writes what is left; errors cannot be reported here.
        let _ = self.flush();
    }
}

// ----- file helpers -----

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

fn closed(op: Operation) -> Error {
    Error::new(ErrorKind::Closed, "the store was closed")
        .with_store(STORE)
        .with_operation(op)
}

fn io_msg(e: io::Error, what: &str, path: &Path) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("{what} {}: {e}", path.display()),
    )
}

fn empty_data() -> Data {
    Data {
        next_version: 1,
        collections: BTreeMap::new(),
    }
}

/// The file's data, or `None` if it does not exist.
fn read_data(path: &Path) -> Result<Option<Data>> {
    match fs::read(path) {
        Ok(bytes) => format::decode_file(&bytes)
            .map(Some)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            ErrorKind::Config,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

fn open_file(config: &JsonFileConfig) -> Result<Open> {
    let path = std::path::absolute(&config.path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot resolve {}: {e}", config.path.display()),
        )
    })?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "cannot open {}: the directory {} does not exist",
                path.display(),
                parent.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("{} is a directory, not a JSON file", path.display()),
        ));
    }
    let lock_path = with_suffix(&path, ".lock");
    let lock = kv_engine::fs::lock_file(&lock_path).map_err(|e| match e {
        LockError::Locked => kv_engine::fs::locked(&path, None),
        LockError::Open(e) => Error::new(
            ErrorKind::Config,
            format!("cannot open the lock file {}: {e}", lock_path.display()),
        ),
        LockError::Lock(e) => io_msg(e, "cannot lock", &lock_path),
    })?;
    let (data, write_now) = match read_data(&path)? {
        Some(data) => (data, false),
        None => (empty_data(), true),
    };
    if write_now {
        write_atomic(&path, &format::encode_file(&data)?)?;
    }
    Ok(Open {
        path,
        durability: config.durability,
        data: RwLock::new(Snapshot {
            data,
            generation: 0,
        }),
        file: Mutex::new(FileWriter {
            _lock: lock,
            written: 0,
        }),
    })
}

/// Replaces the file atomically and durably: `PATH.tmp`, `fsync`, rename, `fsync` of the
/// directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A leftover `PATH.tmp` of a crash is removed first; `create_new` never follows a link
    // planted there.
    kv_engine::fs::write_atomic(path, &with_suffix(path, ".tmp"), bytes, true)
        .map_err(|e| io_msg(e.source, &format!("cannot {}", e.step), &e.path))
}

// ----- operations on the data -----

fn bad(why: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("the stored entry cannot be decoded: {why}"),
    )
}

/// The live item of a slot (`None` if expired), or a `Corrupt` error.
fn live(slot: &Slot, now: Timestamp) -> Result<Option<&Item>> {
    match slot {
        Slot::Item(it) => Ok((!it.is_expired_at(now)).then_some(it)),
        Slot::Bad(_, why) => Err(bad(why)),
    }
}

fn lookup<'d>(data: &'d Data, c: &str, k: &str, now: Timestamp) -> Result<Option<&'d Item>> {
    match data.collections.get(c).and_then(|m| m.get(k)) {
        Some(slot) => live(slot, now),
        None => Ok(None),
    }
}

/// Removes an entry; whether it was live (or undecodable).
fn remove(data: &mut Data, c: &str, k: &str, now: Timestamp) -> bool {
    let Some(entries) = data.collections.get_mut(c) else {
        return false;
    };
    let Some(slot) = entries.remove(k) else {
        return false;
    };
    if entries.is_empty() {
        data.collections.remove(c);
    }
    match slot {
        Slot::Item(it) => !it.is_expired_at(now),
        Slot::Bad(..) => true,
    }
}

fn insert(
    data: &mut Data,
    c: &str,
    k: &str,
    value: &Bytes,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) {
    let version = data.next_version;
    data.next_version += 1;
    data.collections.entry(c.to_owned()).or_default().insert(
        k.to_owned(),
        Slot::Item(Item {
            value: Value::from_bytes(value),
            created_at: Some(now),
            expires_at,
            version,
        }),
    );
}

impl KvStore for JsonFileStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        ready(
            self.read(Operation::Get, collection, Some(key), |d, c, now| {
                lookup(d, c, key, now).map(|it| it.map(Item::to_entry))
            }),
        )
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        ready(
            self.read(Operation::GetMany, collection, None, |d, c, now| {
                keys.iter()
                    .map(|k| {
                        lookup(d, c, k, now)
                            .map(|it| it.map(Item::to_entry))
                            .map_err(|e| e.with_key(k))
                    })
                    .collect()
            }),
        )
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let c = self.inner.info.resolve(collection).to_owned();
        let k = key.to_owned();
        let now = Timestamp::now();
        let expires = ttl::expires_at(now, opts.ttl);
        let mode = opts.mode;
        let (cc, kk) = (c.clone(), k.clone());
        self.write(Operation::Put, Some(c), Some(k), move |data| {
            let expires = expires?;
            match &mode {
                PutMode::Upsert => {}
                PutMode::IfAbsent => {
                    if lookup(data, &cc, &kk, now)?.is_some() {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "the entry exists (put if absent)",
                        ));
                    }
                }
                PutMode::IfVersion(v) => {
                    let current = lookup(data, &cc, &kk, now)?.map(|it| it.version);
                    if current.is_none() || current != v.as_u64() {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "the entry is missing or its version changed (compare-and-swap)",
                        ));
                    }
                }
                _ => {
                    return Err(Error::unsupported(STORE, Operation::Put, "this put mode"));
                }
            }
            insert(data, &cc, &kk, &value, now, expires);
            Ok(((), true))
        })
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let c = self.inner.info.resolve(collection).to_owned();
        let now = Timestamp::now();
        let expires = ttl::expires_at(now, opts.ttl);
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let cc = c.clone();
        self.write(Operation::PutMany, Some(c), None, move |data| {
            let expires = expires?;
            for (k, v) in &entries {
                insert(data, &cc, k, v, now, expires);
            }
            Ok(((), !entries.is_empty()))
        })
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let c = self.inner.info.resolve(collection).to_owned();
        let k = key.to_owned();
        let (cc, kk) = (c.clone(), k.clone());
        self.write(Operation::Delete, Some(c), Some(k), move |data| {
            let exists = data
                .collections
                .get(&cc)
                .is_some_and(|m| m.contains_key(&kk));
            let live = remove(data, &cc, &kk, Timestamp::now());
            Ok((live, exists))
        })
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let c = self.inner.info.resolve(collection).to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let cc = c.clone();
        self.write(Operation::DeleteMany, Some(c), None, move |data| {
            let now = Timestamp::now();
            let mut n = 0;
            let mut changed = false;
            for k in &keys {
                changed |= data.collections.get(&cc).is_some_and(|m| m.contains_key(k));
                if remove(data, &cc, k, now) {
                    n += 1;
                }
            }
            Ok((n, changed))
        })
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        ready(
            self.read(Operation::Ttl, collection, Some(key), |d, c, now| {
                lookup(d, c, key, now).map(|it| it.map(|it| it.to_entry().ttl_at(now)))
            }),
        )
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        ready(self.read(Operation::Scan, collection, None, |d, c, now| {
            let after = scan::key_after(&opts)?;
            let Some(entries) = d.collections.get(c) else {
                return Ok(ScanPage::new(Vec::new(), None));
            };
            let start = match after {
                Some(a) => Bound::Excluded(a),
                None => Bound::Included(opts.prefix.as_str()),
            };
            let page_size = opts.page_size.max(1);
            let mut items = Vec::new();
            let mut iter = entries
                .range::<str, _>((start, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(opts.prefix.as_str()))
                .peekable();
            while let Some((k, slot)) = iter.next() {
                let Some(it) = live(slot, now).map_err(|e| e.with_key(k))? else {
                    continue;
                };
                let entry = (!opts.keys_only).then(|| it.to_entry());
                items.push(ScanItem::new(k.clone(), entry));
                if items.len() >= page_size {
                    let cursor = iter.peek().is_some().then(|| scan::cursor_after(k));
                    return Ok(ScanPage::new(items, cursor));
                }
            }
            Ok(ScanPage::new(items, None))
        }))
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let r = (|| {
            let op = Operation::Collections;
            let open = self.open_state(op)?;
            let snap = open.data.read().unwrap_or_else(PoisonError::into_inner);
            let now = Timestamp::now();
            Ok(snap
                .data
                .collections
                .iter()
                .filter(|(_, m)| m.values().any(|s| !matches!(live(s, now), Ok(None))))
                .map(|(c, _)| c.clone())
                .collect())
        })();
        ready(r)
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let c = self.inner.info.resolve(collection).to_owned();
        let cc = c.clone();
        self.write(Operation::Clear, Some(c), None, move |data| {
            let now = Timestamp::now();
            match data.collections.remove(&cc) {
                None => Ok((0, false)),
                Some(m) => {
                    let n = m
                        .values()
                        .filter(|s| !matches!(live(s, now), Ok(None)))
                        .count();
                    Ok((n as u64, true))
                }
            }
        })
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.write(Operation::Destroy, None, None, move |data| {
            let changed = !data.collections.is_empty();
            data.collections.clear();
            Ok(((), changed))
        })
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.write(Operation::Cull, None, None, move |data| {
            let now = Timestamp::now();
            let mut n = 0u64;
            data.collections.retain(|_, m| {
                m.retain(|_, s| match s {
                    Slot::Item(it) if it.is_expired_at(now) => {
                        n += 1;
                        false
                    }
                    _ => true,
                });
                !m.is_empty()
            });
            Ok((n, n > 0))
        })
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        let taken = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        async move {
            match taken {
                // Writes what `OnClose` left in memory; the lock is released when the last
                // operation still running lets go of the file.
                Some(open) => run_blocking(STORE, Operation::Close, move || open.flush()).await,
                None => Ok(()),
            }
        }
    }
}
