//! The store: a read-only view of a file (lazy), or the whole file in memory (read-write).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::future::{Future, ready};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};

use crate::config::{Durability, Mode, SafetensorsConfig, SafetensorsStoreBuilder};
use crate::format::{self, Meta, MetaState, Payload, Slot};
use crate::tensor::{Dtype, Tensor};

use kv_engine::fs::LockError;

const STORE: &str = crate::SCHEME;

type Colls = BTreeMap<String, BTreeMap<String, Slot>>;

/// A key-value store over one `.safetensors` file, or in memory.
///
/// - **Read-only** ([`open_read_only`](Self::open_read_only), `safetensors://PATH`): only the
///   header is read at open; each read fetches just its tensor's bytes with one positioned
///   read. Writes are [`ErrorKind::ReadOnly`] errors.
/// - **Read-write** ([`open_read_write`](Self::open_read_write),
///   `safetensors://PATH?mode=rw`, [`in_memory`](Self::in_memory)): the whole file in memory,
///   written back atomically on [`flush`](Self::flush)/`close` (or on every write with
///   [`Durability::Immediate`]).
///
/// Cloning is cheap and shares the store. See the crate documentation for the mapping.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_safetensors::{SafetensorsStore, Tensor};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("model.safetensors");
/// let store = SafetensorsStore::open_read_write(&path)?;
/// store.put("", "weight", &Tensor::from_slice(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0])?).await?;
/// store.put("config", "name", &"tiny").await?;
/// store.close().await?; // writes the file
///
/// let model = SafetensorsStore::open_read_only(&path)?;
/// let w: Tensor = model.get("", "weight").await?.unwrap();
/// assert_eq!(w.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(model.get::<String>("config", "name").await?.as_deref(), Some("tiny"));
/// assert!(model.put("", "x", &1).await.is_err()); // read-only
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct SafetensorsStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: SafetensorsConfig,
    /// `None` once closed.
    state: RwLock<Option<State>>,
}

struct State {
    colls: Colls,
    user_meta: BTreeMap<String, String>,
    next_version: u64,
    /// Changed since the file was last written.
    dirty: bool,
    /// Read-only stores: the file and the offset of its data section.
    file: Option<(Arc<File>, u64)>,
    /// Read-write stores on a file: the held lock file.
    _lock: Option<kv_engine::fs::FileLock>,
}

impl fmt::Debug for SafetensorsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafetensorsStore")
            .field("path", &self.inner.config.path)
            .field("mode", &self.inner.config.mode)
            .field("durability", &self.inner.config.durability)
            .field("closed", &self.read_guard().is_none())
            .finish()
    }
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupt, msg.into())
}

fn closed(op: Operation) -> Error {
    Error::new(ErrorKind::Closed, "the store was closed")
        .with_store(STORE)
        .with_operation(op)
}

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound
        | std::io::ErrorKind::PermissionDenied
        | std::io::ErrorKind::IsADirectory
        | std::io::ErrorKind::NotADirectory => ErrorKind::Config,
        std::io::ErrorKind::UnexpectedEof => ErrorKind::Corrupt,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("cannot {what} {}: {e}", path.display())).with_source(e)
}

/// The live metadata of a slot at `now`: `None` if expired, an error if unreadable.
fn live(slot: &Slot, now: Timestamp) -> Result<Option<&Meta>> {
    match &slot.meta {
        MetaState::Corrupt { reason, .. } => Err(corrupt(format!("stored entry: {reason}"))),
        MetaState::Ok(m) => Ok(m.expires_at.is_none_or(|e| e > now).then_some(m)),
    }
}

/// Reads `len` bytes at `offset` of `file` without moving any shared cursor.
fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut buf, offset)?;
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < len {
            let n = file.seek_read(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut buf)?;
    }
    Ok(buf)
}

impl State {
    fn empty() -> Self {
        State {
            colls: Colls::new(),
            user_meta: BTreeMap::new(),
            next_version: 1,
            dirty: false,
            file: None,
            _lock: None,
        }
    }

    fn from_parsed(p: format::Parsed) -> Self {
        State {
            colls: p.colls,
            user_meta: p.user_meta,
            next_version: p.next_version,
            ..State::empty()
        }
    }

    fn slot(&self, collection: &str, key: &str) -> Option<&Slot> {
        self.colls.get(collection).and_then(|c| c.get(key))
    }

    /// The tensor data of a slot.
    fn data(&self, slot: &Slot) -> Result<Bytes> {
        match &slot.payload {
            Payload::Mem(b) => Ok(b.clone()),
            Payload::File { offset } => {
                let (file, start) = self.file.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::Backend, "internal error: no file to read from")
                })?;
                let at = start.saturating_add(*offset);
                read_at(file, at, slot.len).map(Bytes::from).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        corrupt("the file is shorter than when it was opened (was it truncated?)")
                    } else {
                        Error::new(ErrorKind::Backend, format!("cannot read the tensor: {e}"))
                            .with_source(e)
                    }
                })
            }
        }
    }

    fn entry(&self, slot: &Slot, meta: &Meta) -> Result<Entry> {
        let data = self.data(slot)?;
        let value = format::value_bytes(slot, meta, data)?;
        Ok(Entry::new(value)
            .with_created_at(meta.created_at)
            .with_expires_at(meta.expires_at)
            .with_version(Some(Version::from_u64(meta.version))))
    }

    fn next_version(&mut self) -> u64 {
        let v = self.next_version;
        self.next_version += 1;
        v
    }

    /// Every payload in memory (for writing a whole image of a read-only store).
    fn materialized(&self) -> Result<Colls> {
        let mut out = Colls::new();
        for (c, entries) in &self.colls {
            let mut m = BTreeMap::new();
            for (k, slot) in entries {
                let mut s = slot.clone();
                s.payload = Payload::Mem(self.data(slot)?);
                m.insert(k.clone(), s);
            }
            out.insert(c.clone(), m);
        }
        Ok(out)
    }
}

/// A value to store, after recognising tensors.
struct Incoming {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Bytes,
    raw: bool,
}

impl Incoming {
    fn classify(value: Bytes) -> Self {
        match Tensor::from_canonical_json(&value) {
            Some(t) => Incoming::tensor(t),
            None => Incoming {
                dtype: Dtype::U8,
                shape: vec![value.len()],
                data: value,
                raw: true,
            },
        }
    }

    fn tensor(t: Tensor) -> Self {
        let (dtype, shape, data) = t.into_parts();
        Incoming {
            dtype,
            shape,
            data,
            raw: false,
        }
    }

    fn into_slot(self, now: Timestamp, expires_at: Option<Timestamp>, version: u64) -> Slot {
        Slot {
            dtype: self.dtype,
            len: self.data.len(),
            shape: self.shape,
            payload: Payload::Mem(self.data),
            meta: MetaState::Ok(Meta {
                raw: self.raw,
                created_at: Some(now),
                expires_at,
                version,
            }),
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename over `path`, fsync of the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.kv-tmp-{}", std::process::id()));
    kv_engine::fs::write_atomic(path, &tmp, bytes, true)
        .map_err(|e| io_error("write", path, e.source))
}

fn lock_path(path: &Path) -> PathBuf {
    kv_engine::fs::with_suffix(path, ".lock")
}

impl SafetensorsStore {
    /// Opens the store of a `safetensors://PATH` URL (see [`SafetensorsConfig::from_url`]):
    /// read-only by default, `?mode=rw` for read-write, `safetensors://:memory:` in memory.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a missing file (read-only) or directory
    /// (read-write), or a file of another kv format; [`ErrorKind::Corrupt`] for a file that
    /// is not a valid safetensors file; [`ErrorKind::Unavailable`] if another read-write store
    /// (of any process) has the file open.
    ///
    /// ```
    /// use kv_store_safetensors::SafetensorsStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("safetensors://{}?mode=rw", dir.path().join("kv.safetensors").display());
    /// let store = SafetensorsStore::open(&url)?;
    /// assert!(!store.is_read_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = SafetensorsConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens the file at `path` read-only and lazily (only the header is read now).
    pub fn open_read_only(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(SafetensorsConfig::read_only(path))
    }

    /// Opens (or creates) the file at `path` read-write, with [`Durability::Flush`].
    pub fn open_read_write(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(SafetensorsConfig::read_write(path))
    }

    /// An empty read-write store in memory only.
    ///
    /// ```
    /// let store = kv_store_safetensors::SafetensorsStore::in_memory();
    /// assert!(store.path().is_none());
    /// ```
    pub fn in_memory() -> Self {
        Self::with_state(SafetensorsConfig::memory(), State::empty(), true)
    }

    /// A read-write store in memory holding the store serialised by
    /// [`to_bytes`](Self::to_bytes) — or any safetensors file image.
    ///
    /// ```
    /// use kv_store_safetensors::SafetensorsStore;
    ///
    /// let store = SafetensorsStore::in_memory();
    /// store.sync().put("c", "k", &1)?;
    /// let copy = SafetensorsStore::from_bytes(store.to_bytes()?)?;
    /// assert_eq!(copy.sync().get::<i32>("c", "k")?, Some(1));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Self> {
        let config = SafetensorsConfig::memory();
        let parsed =
            format::parse_bytes(&bytes.into(), &config.default_collection).map_err(open_context)?;
        let kv = parsed.kv_format;
        Ok(Self::with_state(config, State::from_parsed(parsed), kv))
    }

    /// A builder (read-only unless [`read_write`](SafetensorsStoreBuilder::read_write)).
    pub fn builder(path: impl Into<PathBuf>) -> SafetensorsStoreBuilder {
        SafetensorsStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: SafetensorsConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let (state, kv) = Self::load(&config, true).map_err(open_context)?;
        Ok(Self::with_state(config, state, kv))
    }

    /// Reads the file of `config` into a new state; with `take_lock`, a read-write store first
    /// takes the file's lock (a reload keeps the lock it has).
    fn load(config: &SafetensorsConfig, take_lock: bool) -> Result<(State, bool)> {
        let default = &config.default_collection;
        let Some(path) = &config.path else {
            return Ok((State::empty(), true));
        };
        match config.mode {
            Mode::ReadOnly => {
                let file = File::open(path).map_err(|e| io_error("open", path, e))?;
                let len = file
                    .metadata()
                    .map_err(|e| io_error("open", path, e))?
                    .len();
                let parsed = format::read_header(&mut &file, len, default).map_err(|e| {
                    Error::new(e.kind(), format!("{}: {}", path.display(), e.message()))
                })?;
                let kv = parsed.kv_format;
                let start = parsed.data_start;
                let mut state = State::from_parsed(parsed);
                state.file = Some((Arc::new(file), start));
                Ok((state, kv))
            }
            Mode::ReadWrite => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                if !dir.is_dir() {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!("the directory of {} does not exist", path.display()),
                    ));
                }
                let lock = if take_lock {
                    Some(Self::lock(path)?)
                } else {
                    None
                };
                let bytes = match std::fs::read(path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(io_error("read", path, e)),
                };
                let mut state = if bytes.is_empty() {
                    State::empty()
                } else {
                    let parsed =
                        format::parse_bytes(&Bytes::from(bytes), default).map_err(|e| {
                            Error::new(e.kind(), format!("{}: {}", path.display(), e.message()))
                        })?;
                    State::from_parsed(parsed)
                };
                state._lock = lock;
                Ok((state, true))
            }
        }
    }

    /// Takes the exclusive lock of a read-write file (`PATH.lock`).
    fn lock(path: &Path) -> Result<kv_engine::fs::FileLock> {
        let lock_file = lock_path(path);
        kv_engine::fs::lock_file(&lock_file).map_err(|e| match e {
            LockError::Locked => kv_engine::fs::locked(path, None),
            LockError::Open(e) => io_error("create the lock file", &lock_file, e),
            LockError::Lock(e) => io_error("lock", &lock_file, e),
        })
    }

    fn with_state(config: SafetensorsConfig, state: State, kv: bool) -> Self {
        let rw = config.mode == Mode::ReadWrite;
        let capability = Capability {
            stores_data: true,
            ttl: rw || kv,
            ttl_native: false,
            ttl_granularity: Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: rw,
            destroy: rw,
            if_absent: rw,
            compare_and_swap: rw,
            created_at: rw || kv,
            durable: rw && config.path.is_some() && config.durability == Durability::Immediate,
            shared: false,
            read_only: !rw,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        SafetensorsStore {
            inner: Arc::new(Inner {
                info,
                config,
                state: RwLock::new(Some(state)),
            }),
        }
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// let store = kv_store_safetensors::SafetensorsStore::in_memory().sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The file, if the store has one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.config.path.as_deref()
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &SafetensorsConfig {
        &self.inner.config
    }

    /// True for a read-only store.
    pub fn is_read_only(&self) -> bool {
        self.inner.config.mode == Mode::ReadOnly
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, Option<State>> {
        // Every critical section leaves the state consistent: poisoning is harmless.
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, Option<State>> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read<R>(&self, op: Operation, f: impl FnOnce(&State) -> Result<R>) -> Result<R> {
        let guard = self.read_guard();
        let st = guard.as_ref().ok_or_else(|| closed(op))?;
        f(st)
    }

    /// Runs a change under the write lock. `f` returns its result and whether it changed
    /// anything; it must change nothing when it fails. With [`Durability::Immediate`] the
    /// file is rewritten before returning, and a failed write undoes the change.
    fn write<R>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        f: impl FnOnce(&mut State) -> Result<(R, bool)>,
    ) -> Result<R> {
        let ctx = |e: Error| e.with_context(STORE, op, collection, key);
        let mut guard = self.write_guard();
        let st = guard.as_mut().ok_or_else(|| closed(op))?;
        if self.is_read_only() {
            return Err(ctx(self.read_only_error()));
        }
        let immediate = self.inner.config.path.is_some()
            && self.inner.config.durability == Durability::Immediate;
        let backup = immediate.then(|| (st.colls.clone(), st.user_meta.clone(), st.next_version));
        let (out, changed) = f(st).map_err(ctx)?;
        if changed {
            st.dirty = true;
            if let Some((colls, user_meta, next)) = backup
                && let Err(e) = self.persist(st)
            {
                st.colls = colls;
                st.user_meta = user_meta;
                st.next_version = next;
                st.dirty = false;
                return Err(ctx(e));
            }
        }
        Ok(out)
    }

    fn read_only_error(&self) -> Error {
        let what = self
            .inner
            .config
            .path
            .as_ref()
            .map_or_else(|| "the store".to_owned(), |p| p.display().to_string());
        Error::new(
            ErrorKind::ReadOnly,
            format!("{what} is opened read-only (open it with ?mode=rw to change it)"),
        )
    }

    /// Writes the file of a read-write store if it changed.
    fn persist(&self, st: &mut State) -> Result<()> {
        let Some(path) = &self.inner.config.path else {
            st.dirty = false;
            return Ok(());
        };
        if self.is_read_only() || !st.dirty {
            return Ok(());
        }
        let image = format::write_image(
            &st.colls,
            &st.user_meta,
            st.next_version,
            &self.inner.config.default_collection,
        )?;
        atomic_write(path, &image)?;
        st.dirty = false;
        Ok(())
    }

    /// Writes the file now if the store changed since it was last written (read-write stores
    /// on a file; a no-op otherwise). Atomic: temp file, fsync, rename, directory fsync.
    pub fn flush(&self) -> Result<()> {
        let mut guard = self.write_guard();
        let st = guard.as_mut().ok_or_else(|| closed(Operation::Close))?;
        self.persist(st)
            .map_err(|e| e.with_store(STORE).with_operation(Operation::Close))
    }

    /// Reads the file again, discarding changes not yet written (read-write) or picking up a
    /// new version of the file (read-only). A store in memory is left as it is.
    pub fn reload(&self) -> Result<()> {
        if self.inner.config.path.is_none() {
            return Ok(());
        }
        let mut guard = self.write_guard();
        let st = guard.as_mut().ok_or_else(|| closed(Operation::Open))?;
        // The lock this store holds stays with it; on error the old state stays.
        let (mut fresh, _) = Self::load(&self.inner.config, false).map_err(open_context)?;
        fresh._lock = st._lock.take();
        *st = fresh;
        Ok(())
    }

    /// The whole store as one safetensors file image (every collection, TTLs and versions in
    /// `__metadata__`), for [`from_bytes`](Self::from_bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.read(Operation::Scan, |st| {
            let colls = st.materialized()?;
            format::write_image(
                &colls,
                &st.user_meta,
                st.next_version,
                &self.inner.config.default_collection,
            )
        })
        .map_err(|e| e.with_store(STORE))
    }

    /// The file's `__metadata__` without the store's own `kv.*` keys.
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        self.read(Operation::Get, |st| Ok(st.user_meta.clone()))
    }

    /// Sets (`Some`) or removes (`None`) a `__metadata__` key (not one starting with `kv.`).
    pub fn set_metadata(&self, key: &str, value: Option<String>) -> Result<()> {
        if key.starts_with("kv.") {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "metadata keys starting with `kv.` belong to the store",
            )
            .with_store(STORE));
        }
        self.write(Operation::Put, None, Some(key), |st| {
            let changed = match value {
                Some(v) => st.user_meta.insert(key.to_owned(), v.clone()) != Some(v),
                None => st.user_meta.remove(key).is_some(),
            };
            Ok(((), changed))
        })
    }

    /// The tensor of an entry (a raw value is a `U8` tensor of shape `[len]`), without going
    /// through a codec.
    pub fn get_tensor(&self, collection: &str, key: &str) -> Result<Option<Tensor>> {
        let op = Operation::Get;
        let name = self.inner.info.resolve(collection);
        self.read(op, |st| {
            let Some(slot) = st.slot(name, key) else {
                return Ok(None);
            };
            if live(slot, Timestamp::now())?.is_none() {
                return Ok(None);
            }
            let data = st.data(slot)?;
            Tensor::new(slot.dtype, slot.shape.clone(), data)
                .map(Some)
                .map_err(|e| corrupt(e.message().to_owned()))
        })
        .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))
    }

    /// Stores a tensor (no TTL, upsert), without going through a codec; it reads back with
    /// `get::<Tensor>` or [`get_tensor`](Self::get_tensor).
    pub fn put_tensor(&self, collection: &str, key: &str, tensor: Tensor) -> Result<()> {
        self.put_incoming(
            Operation::Put,
            collection,
            key,
            Incoming::tensor(tensor),
            &PutOptions::default(),
        )
    }

    // ----- operations -----

    fn get_sync(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        let op = Operation::Get;
        let name = self.inner.info.resolve(collection);
        self.read(op, |st| {
            let Some(slot) = st.slot(name, key) else {
                return Ok(None);
            };
            match live(slot, Timestamp::now())? {
                Some(meta) => st.entry(slot, meta).map(Some),
                None => Ok(None),
            }
        })
        .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))
    }

    fn get_many_sync(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let op = Operation::GetMany;
        let name = self.inner.info.resolve(collection);
        let now = Timestamp::now();
        self.read(op, |st| {
            keys.iter()
                .map(|key| {
                    let r = match st.slot(name, key) {
                        None => Ok(None),
                        Some(slot) => match live(slot, now) {
                            Ok(Some(meta)) => st.entry(slot, meta).map(Some),
                            Ok(None) => Ok(None),
                            Err(e) => Err(e),
                        },
                    };
                    r.map_err(|e| e.with_key(key))
                })
                .collect()
        })
        .map_err(|e| e.with_context(STORE, op, Some(name), None))
    }

    fn put_incoming(
        &self,
        op: Operation,
        collection: &str,
        key: &str,
        value: Incoming,
        opts: &PutOptions,
    ) -> Result<()> {
        let name = self.inner.info.resolve(collection);
        let now = Timestamp::now();
        let expires_at = ttl::expires_at(now, opts.ttl)
            .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))?;
        self.write(op, Some(name), Some(key), |st| {
            let current = match st.slot(name, key) {
                None => None,
                Some(slot) => match &opts.mode {
                    // An upsert replaces whatever is there, readable or not.
                    PutMode::Upsert => None,
                    _ => live(slot, now)?.map(|m| m.version),
                },
            };
            match &opts.mode {
                PutMode::Upsert => {}
                PutMode::IfAbsent => {
                    if current.is_some() {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "an entry with this key exists",
                        ));
                    }
                }
                PutMode::IfVersion(expected) => {
                    if current.is_none() || current != expected.as_u64() {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "the entry is missing or was changed since this version was read",
                        ));
                    }
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("put mode {other:?} is not supported"),
                    ));
                }
            }
            let version = st.next_version();
            let slot = value.into_slot(now, expires_at, version);
            st.colls
                .entry(name.to_owned())
                .or_default()
                .insert(key.to_owned(), slot);
            Ok(((), true))
        })
    }

    fn put_many_sync(
        &self,
        collection: &str,
        entries: Vec<(String, Bytes)>,
        opts: &PutManyOptions,
    ) -> Result<()> {
        let op = Operation::PutMany;
        let name = self.inner.info.resolve(collection);
        let now = Timestamp::now();
        let expires_at = ttl::expires_at(now, opts.ttl)
            .map_err(|e| e.with_context(STORE, op, Some(name), None))?;
        let values: Vec<(String, Incoming)> = entries
            .into_iter()
            .map(|(k, v)| (k, Incoming::classify(v)))
            .collect();
        self.write(op, Some(name), None, |st| {
            if values.is_empty() {
                return Ok(((), false));
            }
            for (k, v) in values {
                let version = st.next_version();
                let slot = v.into_slot(now, expires_at, version);
                st.colls.entry(name.to_owned()).or_default().insert(k, slot);
            }
            Ok(((), true))
        })
    }

    fn delete_sync(&self, op: Operation, collection: &str, keys: &[String]) -> Result<u64> {
        let name = self.inner.info.resolve(collection);
        let key = match keys {
            [k] => Some(k.as_str()),
            _ => None,
        };
        let now = Timestamp::now();
        self.write(op, Some(name), key, |st| {
            let Some(coll) = st.colls.get_mut(name) else {
                return Ok((0, false));
            };
            let mut live_removed = 0;
            let mut changed = false;
            for k in keys {
                if let Some(slot) = coll.remove(k.as_str()) {
                    changed = true;
                    // A corrupt entry counts as existing: it was there.
                    if !matches!(live(&slot, now), Ok(None)) {
                        live_removed += 1;
                    }
                }
            }
            if coll.is_empty() {
                st.colls.remove(name);
            }
            Ok((live_removed, changed))
        })
    }

    fn ttl_sync(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        let op = Operation::Ttl;
        let name = self.inner.info.resolve(collection);
        let now = Timestamp::now();
        self.read(op, |st| {
            let Some(slot) = st.slot(name, key) else {
                return Ok(None);
            };
            Ok(live(slot, now)?.map(|m| match m.expires_at {
                None => Ttl::Never,
                Some(e) => Ttl::Remaining(e.duration_since(now).unwrap_or(Duration::ZERO)),
            }))
        })
        .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))
    }

    fn scan_sync(&self, collection: &str, opts: &ScanOptions) -> Result<ScanPage> {
        let op = Operation::Scan;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), None);
        let after = scan::key_after(opts).map_err(ctx)?;
        let limit = opts.page_size.max(1);
        let now = Timestamp::now();
        self.read(op, |st| {
            let Some(coll) = st.colls.get(name) else {
                return Ok(ScanPage::new(Vec::new(), None));
            };
            let start = match after {
                Some(a) => Bound::Excluded(a),
                None => Bound::Included(opts.prefix.as_str()),
            };
            let mut items: Vec<ScanItem> = Vec::new();
            let mut cursor = None;
            for (k, slot) in coll.range::<str, _>((start, Bound::Unbounded)) {
                if !k.starts_with(opts.prefix.as_str()) {
                    break;
                }
                let meta = match live(slot, now) {
                    Ok(None) => continue,
                    Ok(Some(m)) => Some(m),
                    // Listing keys does not need the metadata's content.
                    Err(_) if opts.keys_only => None,
                    Err(e) => return Err(e.with_key(k)),
                };
                if items.len() == limit {
                    cursor = items.last().map(|i| scan::cursor_after(&i.key));
                    break;
                }
                let entry = match meta {
                    Some(m) if !opts.keys_only => {
                        Some(st.entry(slot, m).map_err(|e| e.with_key(k))?)
                    }
                    _ => None,
                };
                items.push(ScanItem::new(k.clone(), entry));
            }
            Ok(ScanPage::new(items, cursor))
        })
        .map_err(ctx)
    }

    fn collections_sync(&self) -> Result<Vec<String>> {
        let now = Timestamp::now();
        self.read(Operation::Collections, |st| {
            Ok(st
                .colls
                .iter()
                .filter(|(_, c)| c.values().any(|s| !matches!(live(s, now), Ok(None))))
                .map(|(n, _)| n.clone())
                .collect())
        })
        .map_err(|e| e.with_store(STORE).with_operation(Operation::Collections))
    }

    fn clear_sync(&self, collection: &str) -> Result<u64> {
        let name = self.inner.info.resolve(collection);
        let now = Timestamp::now();
        self.write(Operation::Clear, Some(name), None, |st| {
            Ok(match st.colls.remove(name) {
                None => (0, false),
                Some(c) => (
                    c.values()
                        .filter(|s| !matches!(live(s, now), Ok(None)))
                        .count() as u64,
                    true,
                ),
            })
        })
    }

    fn destroy_sync(&self) -> Result<()> {
        self.write(Operation::Destroy, None, None, |st| {
            st.colls.clear();
            st.user_meta.clear();
            Ok(((), true))
        })
    }

    fn cull_sync(&self) -> Result<u64> {
        let now = Timestamp::now();
        self.write(Operation::Cull, None, None, |st| {
            let mut n = 0;
            for coll in st.colls.values_mut() {
                let before = coll.len();
                // Corrupt entries are kept: their expiry is unknown.
                coll.retain(|_, s| !matches!(live(s, now), Ok(None)));
                n += (before - coll.len()) as u64;
            }
            st.colls.retain(|_, c| !c.is_empty());
            Ok((n, n > 0))
        })
    }

    fn close_sync(&self) -> Result<()> {
        let taken = self.write_guard().take();
        match taken {
            // Dropping the state closes the file and releases the lock, after the last write.
            Some(mut st) => self
                .persist(&mut st)
                .map_err(|e| e.with_store(STORE).with_operation(Operation::Close)),
            None => Ok(()),
        }
    }

    /// Runs a write inline, or on tokio's blocking pool when it rewrites the file
    /// ([`Durability::Immediate`]) and a runtime is present.
    fn write_future<T, F>(&self, op: Operation, f: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&SafetensorsStore) -> Result<T> + Send + 'static,
    {
        let blocking = !self.is_read_only()
            && self.inner.config.path.is_some()
            && self.inner.config.durability == Durability::Immediate;
        let this = self.clone();
        async move {
            if !blocking {
                return f(&this);
            }
            kv_engine::blocking::run_blocking(STORE, op, move || f(&this)).await
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: a read-write store dropped without close still writes its changes.
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(st), Some(path), Mode::ReadWrite) =
            (state, &self.config.path, self.config.mode)
            && st.dirty
            && let Ok(image) = format::write_image(
                &st.colls,
                &st.user_meta,
                st.next_version,
                &self.config.default_collection,
            )
        {
            let _ = atomic_write(path, &image);
        }
    }
}

/// Exports one collection of any store to a `.safetensors` file (written atomically): each
/// live entry becomes a tensor named by its key — a value holding a [`Tensor`] (canonical
/// JSON, as kv's JSON codec writes it) as that tensor, any other value as a `U8` tensor of its
/// bytes. No kv metadata is written: the file is a plain tensor file (TTLs are not kept), and
/// reading it back with [`SafetensorsStore::open_read_only`] gives the same keys in the
/// default collection. Returns the number of tensors.
///
/// A key equal to `__metadata__` cannot be a tensor name: [`ErrorKind::InvalidKey`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::KvStoreExt;
/// use kv_store_safetensors::{SafetensorsStore, Tensor, export};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = SafetensorsStore::in_memory();
/// store.put("weights", "w", &Tensor::vector(&[1i64, 2])).await?;
/// let path = dir.path().join("weights.safetensors");
/// assert_eq!(export(&store, "weights", &path).await?, 1);
/// let file = SafetensorsStore::open_read_only(&path)?;
/// assert_eq!(file.get_tensor("", "w")?.unwrap().to_vec::<i64>()?, vec![1, 2]);
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
pub async fn export<S: KvStore + ?Sized>(
    store: &S,
    collection: &str,
    path: impl AsRef<Path>,
) -> Result<u64> {
    let (image, n) = export_image(store, collection).await?;
    atomic_write(path.as_ref(), &image)?;
    Ok(n)
}

/// Like [`export`], returning the file's bytes.
pub async fn export_bytes<S: KvStore + ?Sized>(store: &S, collection: &str) -> Result<Vec<u8>> {
    export_image(store, collection).await.map(|(b, _)| b)
}

async fn export_image<S: KvStore + ?Sized>(store: &S, collection: &str) -> Result<(Vec<u8>, u64)> {
    let mut tensors = Vec::new();
    let mut opts = ScanOptions::default();
    loop {
        let page = store.scan_opts(collection, opts.clone()).await?;
        for item in page.items {
            let Some(entry) = item.entry else { continue };
            if item.key == "__metadata__" {
                return Err(Error::new(
                    ErrorKind::InvalidKey,
                    "the key `__metadata__` cannot be a tensor name",
                )
                .with_key(&item.key));
            }
            let t = Tensor::from_canonical_json(&entry.value)
                .unwrap_or_else(|| Tensor::from_bytes(entry.value));
            tensors.push((item.key, t));
        }
        match page.cursor {
            Some(c) => opts = opts.with_cursor(Some(c)),
            None => break,
        }
    }
    let n = tensors.len() as u64;
    Ok((format::serialize(tensors, None)?, n))
}

impl KvStore for SafetensorsStore {
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
        let (c, k) = (collection.to_owned(), key.to_owned());
        self.write_future(Operation::Put, move |s| {
            s.put_incoming(Operation::Put, &c, &k, Incoming::classify(value), &opts)
        })
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let c = collection.to_owned();
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.write_future(Operation::PutMany, move |s| {
            s.put_many_sync(&c, entries, &opts)
        })
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let (c, k) = (collection.to_owned(), vec![key.to_owned()]);
        self.write_future(Operation::Delete, move |s| {
            s.delete_sync(Operation::Delete, &c, &k).map(|n| n > 0)
        })
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let c = collection.to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.write_future(Operation::DeleteMany, move |s| {
            s.delete_sync(Operation::DeleteMany, &c, &keys)
        })
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
        let c = collection.to_owned();
        self.write_future(Operation::Clear, move |s| s.clear_sync(&c))
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.write_future(Operation::Destroy, |s| s.destroy_sync())
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.write_future(Operation::Cull, |s| s.cull_sync())
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        let blocking = !self.is_read_only() && self.inner.config.path.is_some();
        let this = self.clone();
        async move {
            if blocking && let Ok(rt) = tokio::runtime::Handle::try_current() {
                let t = this.clone();
                if let Ok(r) = rt.spawn_blocking(move || t.close_sync()).await {
                    return r;
                }
            }
            this.close_sync()
        }
    }
}
