//! The store: one directory per collection, one JSON file per entry, every write under the
//! tree's lock file.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::{Future, ready};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl, scan,
    ttl,
};

use crate::config::{Durability, FileTreeConfig, FileTreeStoreBuilder};
use crate::format::{
    self, Decoded, Document, ENTRY_EXT, FORMAT_VERSION, LOCK_FILE, STATE_FILE, State, TEMP_PREFIX,
    VERSION_BLOCK,
};

use kv_engine::blocking::run_blocking;

const STORE: &str = crate::SCHEME;

/// A key-value store in a directory tree: `<root>/<collection>/<key>.json`, one human-readable
/// JSON document per entry. Cloning is cheap and shares the store.
///
/// Every write is atomic (temporary file, `fsync`, rename, `fsync` of the directory) and runs
/// under an exclusive lock on `<root>/.kv-filetree.lock`, so several stores — in this process
/// or in others — can use the same tree at once, with atomic put-if-absent and
/// compare-and-swap. Reads take no lock. Names are escaped so that no key or collection can
/// reach outside the root; see [`format`](crate::format).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_filetree::FileTreeStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileTreeStore::open_path(dir.path())?;
/// store.put("users", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("users", "alice").await?, Some(30));
/// assert!(dir.path().join("users/alice.json").is_file());
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct FileTreeStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: FileTreeConfig,
    /// The canonical (absolute, symlink-free) root.
    root: PathBuf,
    /// `None` once closed.
    state: RwLock<Option<Arc<Open>>>,
}

struct Open {
    writer: Mutex<Writer>,
}

/// What a write needs: the lock file and this process's block of versions.
struct Writer {
    lock: File,
    next: u64,
    reserved: u64,
}

impl fmt::Debug for FileTreeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTreeStore")
            .field("root", &self.inner.config.root)
            .field("durability", &self.inner.config.durability)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &self.state().is_none())
            .finish()
    }
}

impl FileTreeStore {
    /// Opens (or creates) the tree of a `filetree://PATH` URL (see
    /// [`FileTreeConfig::from_url`]).
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a root that cannot be created or is not a
    /// directory, or a tree of another format version; [`ErrorKind::Corrupt`] for a damaged
    /// state file.
    ///
    /// ```
    /// use kv_store_filetree::FileTreeStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("filetree://{}?durability=none", dir.path().display());
    /// let store = FileTreeStore::open(&url)?;
    /// assert!(!kv_core::KvStore::info(&store).capability.durable);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = FileTreeConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the tree at `root`, with the default settings.
    pub fn open_path(root: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(FileTreeConfig::new(root))
    }

    /// A builder for the tree at `root`.
    pub fn builder(root: impl Into<PathBuf>) -> FileTreeStoreBuilder {
        FileTreeStoreBuilder::new(root)
    }

    pub(crate) fn from_config(config: FileTreeConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let (root, lock) = open_root(&config).map_err(open_context)?;
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: Duration::from_micros(1),
            batch_native: false,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            durable: config.durability == Durability::Immediate,
            shared: true,
            max_key_len: None,
            max_collection_len: None,
            max_value_len: None,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        let open = Open {
            writer: Mutex::new(Writer {
                lock,
                next: 0,
                reserved: 0,
            }),
        };
        Ok(FileTreeStore {
            inner: Arc::new(Inner {
                info,
                config,
                root,
                state: RwLock::new(Some(Arc::new(open))),
            }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_filetree::FileTreeStore::open_path(dir.path())?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The root directory, canonical (absolute, without symbolic links).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &FileTreeConfig {
        &self.inner.config
    }

    /// The file that holds `(collection, key)` (whether or not it exists); an empty collection
    /// is the default collection.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_filetree::FileTreeStore::open_path(dir.path())?;
    /// assert!(store.entry_path("users", "Bob").ends_with("users/^bob.json"));
    /// assert!(store.entry_path("", "k").ends_with("default_collection/k.json"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn entry_path(&self, collection: &str, key: &str) -> PathBuf {
        format::entry_path(&self.inner.root, self.inner.info.resolve(collection), key)
    }

    fn state(&self) -> Option<Arc<Open>> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn check_open(&self, op: Operation) -> Result<()> {
        match self.state() {
            Some(_) => Ok(()),
            None => Err(closed(op)),
        }
    }

    /// Runs a write under the in-process writer mutex and the tree's lock file, on tokio's
    /// blocking pool (or inline outside a runtime).
    fn write<T, F>(
        &self,
        op: Operation,
        collection: Option<String>,
        key: Option<String>,
        f: F,
    ) -> impl Future<Output = Result<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Writer) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let open = self.state();
        async move {
            let ctx = |e: Error| e.with_context(STORE, op, collection.as_deref(), key.as_deref());
            let open = open.ok_or_else(|| closed(op))?;
            run_blocking(STORE, op, move || {
                let mut w = open.writer.lock().unwrap_or_else(PoisonError::into_inner);
                w.lock
                    .lock()
                    .map_err(|e| io_msg(e, "cannot lock", &inner.root.join(LOCK_FILE)))?;
                let r = f(&inner, &mut w);
                let _ = w.lock.unlock();
                r
            })
            .await
            .map_err(ctx)
        }
    }

    // ----- reads -----

    fn get_sync(&self, op: Operation, collection: &str, key: &str) -> Result<Option<Document>> {
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), Some(key));
        self.check_open(op).map_err(ctx)?;
        read_live(&self.inner.root, name, key, Timestamp::now()).map_err(ctx)
    }

    fn get_many_sync(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let op = Operation::GetMany;
        let name = self.inner.info.resolve(collection);
        self.check_open(op)
            .map_err(|e| e.with_context(STORE, op, Some(name), None))?;
        let now = Timestamp::now();
        keys.iter()
            .map(|key| {
                read_live(&self.inner.root, name, key, now)
                    .map(|d| d.map(Document::into_entry))
                    .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))
            })
            .collect()
    }

    fn scan_sync(&self, collection: &str, opts: &ScanOptions) -> Result<ScanPage> {
        let op = Operation::Scan;
        let name = self.inner.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, op, Some(name), None);
        self.check_open(op).map_err(ctx)?;
        let after = scan::key_after(opts).map_err(ctx)?.map(str::to_owned);
        let dir = format::collection_dir(&self.inner.root, name);
        if !check_dir(&dir).map_err(ctx)? {
            return Ok(ScanPage::new(Vec::new(), None));
        }
        let now = Timestamp::now();
        // Every candidate key → its file name (and its document, if it had to be read to learn
        // the key).
        let mut candidates: BTreeMap<String, (String, Option<Document>)> = BTreeMap::new();
        for (file, decoded) in list_entry_files(&dir).map_err(ctx)? {
            match decoded {
                Decoded::Name(key) => {
                    if key.starts_with(opts.prefix.as_str())
                        && after.as_deref().is_none_or(|a| key.as_str() > a)
                    {
                        candidates.insert(key, (file, None));
                    }
                }
                Decoded::Hashed(start) => {
                    if !(start.starts_with(opts.prefix.as_str())
                        || opts.prefix.starts_with(start.as_str()))
                    {
                        continue;
                    }
                    let Some(doc) = read_doc(&self.inner.root, &dir.join(&file)).map_err(ctx)?
                    else {
                        continue;
                    };
                    check_doc(&doc, name, &file).map_err(ctx)?;
                    if doc.key.starts_with(opts.prefix.as_str())
                        && after.as_deref().is_none_or(|a| doc.key.as_str() > a)
                    {
                        candidates.insert(doc.key.clone(), (file, Some(doc)));
                    }
                }
            }
        }
        let page_size = opts.page_size.max(1);
        let mut items = Vec::new();
        let mut cursor = after;
        loop {
            let want = (page_size - items.len()).min(candidates.len().max(1));
            let o = opts
                .clone()
                .with_cursor(cursor.as_deref().map(scan::cursor_after))
                .with_page_size(want);
            let (page, more) =
                scan::select_page(candidates.keys().map(String::as_str), &o).map_err(ctx)?;
            for key in page {
                let Some((file, preloaded)) = candidates.get(key) else {
                    continue;
                };
                let doc = match preloaded {
                    Some(d) => Some(d.clone()),
                    None => {
                        let d = read_doc(&self.inner.root, &dir.join(file))
                            .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))?;
                        if let Some(d) = &d {
                            check_doc(d, name, file)
                                .map_err(|e| e.with_context(STORE, op, Some(name), Some(key)))?;
                        }
                        d
                    }
                };
                cursor = Some(key.to_owned());
                if let Some(doc) = doc.filter(|d| !d.is_expired_at(now)) {
                    let entry = (!opts.keys_only).then(|| doc.into_entry());
                    items.push(ScanItem::new(key.to_owned(), entry));
                }
            }
            if !more {
                return Ok(ScanPage::new(items, None));
            }
            if items.len() >= page_size {
                return Ok(ScanPage::new(
                    items,
                    cursor.as_deref().map(scan::cursor_after),
                ));
            }
        }
    }

    fn collections_sync(&self) -> Result<Vec<String>> {
        let op = Operation::Collections;
        let ctx = |e: Error| e.with_context(STORE, op, None, None);
        self.check_open(op).map_err(ctx)?;
        let root = &self.inner.root;
        let now = Timestamp::now();
        let mut out = Vec::new();
        for (dir_name, decoded) in list_collection_dirs(root).map_err(ctx)? {
            let dir = root.join(&dir_name);
            let mut found: Option<String> = None;
            for (file, _) in list_entry_files(&dir).map_err(ctx)? {
                match read_doc(root, &dir.join(&file)) {
                    Ok(Some(doc)) if !doc.is_expired_at(now) => {
                        if format::encode_name(&doc.collection) == dir_name {
                            found = Some(doc.collection);
                            break;
                        }
                    }
                    Ok(_) => {}
                    // A damaged entry is present: the collection exists.
                    Err(_) => {
                        if let Decoded::Name(c) = &decoded {
                            found = Some(c.clone());
                            break;
                        }
                    }
                }
            }
            if let Some(c) = found.filter(|c| !c.is_empty()) {
                out.push(c);
            }
        }
        out.sort();
        Ok(out)
    }
}

// ----- file-system helpers -----

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

fn closed(op: Operation) -> Error {
    Error::new(ErrorKind::Closed, "the store was closed")
        .with_store(STORE)
        .with_operation(op)
}

fn io_msg(e: io::Error, what: &str, path: &Path) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ErrorKind::Corrupt,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("{what} {}: {e}", path.display()))
}

fn config_error(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

/// Creates the root if needed, checks it, opens the lock file and checks or creates the state
/// file.
fn open_root(config: &FileTreeConfig) -> Result<(PathBuf, File)> {
    let given = &config.root;
    fs::create_dir_all(given)
        .map_err(|e| config_error(format!("cannot create {}: {e}", given.display())))?;
    let root = fs::canonicalize(given)
        .map_err(|e| config_error(format!("cannot resolve {}: {e}", given.display())))?;
    if !root.is_dir() {
        return Err(config_error(format!(
            "{} is not a directory",
            given.display()
        )));
    }
    let lock_path = root.join(LOCK_FILE);
    refuse_symlink(&lock_path)?;
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| config_error(format!("cannot open {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| io_msg(e, "cannot lock", &lock_path))?;
    let r = (|| match read_state(&root)? {
        Some(state) if state.format != FORMAT_VERSION => Err(config_error(format!(
            "{} is a filetree of format {}, this version reads format {FORMAT_VERSION}",
            root.display(),
            state.format
        ))),
        Some(_) => Ok(()),
        None => write_state(
            &root,
            State {
                format: FORMAT_VERSION,
                next_version: 1,
            },
        ),
    })();
    let _ = lock.unlock();
    r?;
    Ok((root, lock))
}

fn read_state(root: &Path) -> Result<Option<State>> {
    let path = root.join(STATE_FILE);
    refuse_symlink(&path)?;
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("{} is damaged: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_msg(e, "cannot read", &path)),
    }
}

fn write_state(root: &Path, state: State) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(&state)
        .map_err(|e| Error::new(ErrorKind::Backend, format!("state: {e}")))?;
    bytes.push(b'\n');
    write_atomic(root, root, STATE_FILE, &bytes, true)
}

/// Errors if `path` is a symbolic link (never followed out of the root).
fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "{} is a symbolic link: the store never follows links out of its root",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// `Ok(false)` if the collection directory does not exist; an error if it is anything but a
/// real directory (a symbolic link planted in the tree is never followed).
fn check_dir(dir: &Path) -> Result<bool> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => Ok(true),
        Ok(m) if m.file_type().is_symlink() => Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "{} is a symbolic link: the store never follows links out of its root",
                dir.display()
            ),
        )),
        Ok(_) => Err(Error::new(
            ErrorKind::Corrupt,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_msg(e, "cannot inspect", dir)),
    }
}

/// Checks that an open file really is inside the root (Linux: asks the kernel for the path of
/// the open file, which catches a directory swapped for a symbolic link after it was checked).
fn verify_inside(file: &File, root: &Path, path: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            && !real.starts_with(root)
        {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{} resolves to {}, outside the store's root",
                    path.display(),
                    real.display()
                ),
            ));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, root, path);
    Ok(())
}

/// Reads and parses an entry file; `None` if it does not exist.
fn read_doc(root: &Path, path: &Path) -> Result<Option<Document>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {}
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{} is not a regular file (symbolic links are never followed)",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_msg(e, "cannot inspect", path)),
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_msg(e, "cannot open", path)),
    };
    verify_inside(&file, root, path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_msg(e, "cannot read", path))?;
    format::decode_document(&bytes)
        .map(Some)
        .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
}

/// Checks that a document sits where its collection and key say.
fn check_doc(doc: &Document, collection: &str, file: &str) -> Result<()> {
    if doc.collection != collection || format::entry_file_name(&doc.key) != file {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "the file {file} holds the entry {:?} of collection {:?}, which belongs elsewhere",
                doc.key, doc.collection
            ),
        ));
    }
    Ok(())
}

/// The live document of `(collection, key)`.
fn read_live(root: &Path, collection: &str, key: &str, now: Timestamp) -> Result<Option<Document>> {
    let dir = format::collection_dir(root, collection);
    if !check_dir(&dir)? {
        return Ok(None);
    }
    let file = format::entry_file_name(key);
    let Some(doc) = read_doc(root, &dir.join(&file))? else {
        return Ok(None);
    };
    check_doc(&doc, collection, &file)?;
    Ok((!doc.is_expired_at(now)).then_some(doc))
}

/// The entry files of a collection directory, with their decoded names.
fn list_entry_files(dir: &Path) -> Result<Vec<(String, Decoded)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_msg(e, "cannot list", dir)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| io_msg(e, "cannot list", dir))?;
        let Ok(name) = ent.file_name().into_string() else {
            continue;
        };
        let Some(stem) = name.strip_suffix(ENTRY_EXT) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        if let Some(d) = format::decode_name(stem) {
            out.push((name, d));
        }
    }
    Ok(out)
}

/// The temporary files of a collection directory.
fn list_temp_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_msg(e, "cannot list", dir)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| io_msg(e, "cannot list", dir))?;
        if ent
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX))
        {
            out.push(ent.path());
        }
    }
    Ok(out)
}

/// The collection directories of the root (real directories with names this store makes).
fn list_collection_dirs(root: &Path) -> Result<Vec<(String, Decoded)>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(root).map_err(|e| io_msg(e, "cannot list", root))?;
    for ent in rd {
        let ent = ent.map_err(|e| io_msg(e, "cannot list", root))?;
        let Ok(name) = ent.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // `DirEntry::file_type` does not follow symbolic links: links are skipped.
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        if let Some(d) = format::decode_name(&name) {
            out.push((name, d));
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<()> {
    kv_engine::fs::sync_dir(dir).map_err(|e| io_msg(e, "cannot sync directory", dir))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `dir/name` atomically: a temporary file in `dir`, written and (if `sync`) flushed,
/// renamed over `name`, then (if `sync`) the directory flushed.
fn write_atomic(root: &Path, dir: &Path, name: &str, bytes: &[u8], sync: bool) -> Result<()> {
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let open = || OpenOptions::new().write(true).create_new(true).open(&tmp);
    let mut file = match open() {
        Ok(f) => f,
        // A leftover of a crashed writer with the same process id (writers hold the tree's
        // lock, so nobody is using it): `create_new` never follows a link, remove and retry.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp);
            open().map_err(|e| io_msg(e, "cannot create", &tmp))?
        }
        Err(e) => return Err(io_msg(e, "cannot create", &tmp)),
    };
    let r = (|| {
        verify_inside(&file, root, &tmp)?;
        file.write_all(bytes)
            .map_err(|e| io_msg(e, "cannot write", &tmp))?;
        if sync {
            file.sync_all()
                .map_err(|e| io_msg(e, "cannot sync", &tmp))?;
        }
        drop(file);
        let target = dir.join(name);
        fs::rename(&tmp, &target).map_err(|e| io_msg(e, "cannot rename to", &target))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes sure the collection directory exists (creating it durably).
fn ensure_dir(root: &Path, dir: &Path, sync: bool) -> Result<()> {
    if check_dir(dir)? {
        return Ok(());
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if sync {
                sync_dir(root)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_dir(dir).map(|_| ()),
        Err(e) => Err(io_msg(e, "cannot create", dir)),
    }
}

fn remove(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_msg(e, "cannot remove", path)),
    }
}

/// Removes a directory if it is empty (foreign files keep it).
fn remove_dir_if_empty(dir: &Path) -> bool {
    fs::remove_dir(dir).is_ok()
}

impl Inner {
    fn sync(&self) -> bool {
        self.config.durability == Durability::Immediate
    }

    fn next_version(&self, w: &mut Writer) -> Result<u64> {
        if w.next >= w.reserved {
            let state = read_state(&self.root)?.unwrap_or(State {
                format: FORMAT_VERSION,
                next_version: 1,
            });
            let start = state.next_version.max(w.next).max(1);
            let reserved = start.checked_add(VERSION_BLOCK).ok_or_else(|| {
                Error::new(ErrorKind::Corrupt, "the version counter is exhausted")
            })?;
            write_state(
                &self.root,
                State {
                    format: FORMAT_VERSION,
                    next_version: reserved,
                },
            )?;
            w.next = start;
            w.reserved = reserved;
        }
        let v = w.next;
        w.next += 1;
        Ok(v)
    }

    /// One put under the lock.
    #[allow(clippy::too_many_arguments)]
    fn put_locked(
        &self,
        w: &mut Writer,
        collection: &str,
        key: &str,
        value: &[u8],
        now: Timestamp,
        expires_at: Option<Timestamp>,
        mode: &PutMode,
        sync: bool,
    ) -> Result<()> {
        let dir = format::collection_dir(&self.root, collection);
        if !matches!(mode, PutMode::Upsert) {
            let current = read_live(&self.root, collection, key, now)?;
            match (mode, current) {
                (PutMode::IfAbsent, Some(_)) => {
                    return Err(Error::new(
                        ErrorKind::ConditionFailed,
                        "the entry exists (put if absent)",
                    ));
                }
                (PutMode::IfVersion(v), cur) => {
                    let ok = cur.is_some_and(|d| v.as_u64() == Some(d.version));
                    if !ok {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "the entry is missing or its version changed (compare-and-swap)",
                        ));
                    }
                }
                _ => {}
            }
        }
        ensure_dir(&self.root, &dir, sync)?;
        let version = self.next_version(w)?;
        let bytes = format::encode_document(collection, key, value, now, expires_at, version);
        write_atomic(
            &self.root,
            &dir,
            &format::entry_file_name(key),
            &bytes,
            sync,
        )
    }

    /// Deletes one entry file under the lock; whether a live (or unreadable) entry was there.
    fn delete_locked(
        &self,
        dir: &Path,
        collection: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let file = format::entry_file_name(key);
        let path = dir.join(&file);
        let live = match read_doc(&self.root, &path) {
            Ok(None) => return Ok(false),
            Ok(Some(doc)) => check_doc(&doc, collection, &file).is_err() || !doc.is_expired_at(now),
            // Damaged: delete it without reading it, and count it as present.
            Err(_) => true,
        };
        remove(&path)?;
        Ok(live)
    }

    /// Empties a collection directory of this store's files and removes it if it is then
    /// empty; returns the number of live (or unreadable) entries removed.
    fn clear_dir(&self, dir: &Path, now: Timestamp) -> Result<u64> {
        let mut n = 0;
        for (file, _) in list_entry_files(dir)? {
            let path = dir.join(&file);
            let live = match read_doc(&self.root, &path) {
                Ok(None) => false,
                Ok(Some(doc)) => !doc.is_expired_at(now),
                Err(_) => true,
            };
            if remove(&path)? && live {
                n += 1;
            }
        }
        for tmp in list_temp_files(dir)? {
            remove(&tmp)?;
        }
        if self.sync() {
            sync_dir(dir)?;
        }
        if remove_dir_if_empty(dir) && self.sync() {
            sync_dir(&self.root)?;
        }
        Ok(n)
    }
}

impl KvStore for FileTreeStore {
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
            self.get_sync(Operation::Get, collection, key)
                .map(|d| d.map(Document::into_entry)),
        )
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
        let name = self.inner.info.resolve(collection).to_owned();
        let key = key.to_owned();
        let now = Timestamp::now();
        let expires = ttl::expires_at(now, opts.ttl)
            .map_err(|e| e.with_context(STORE, Operation::Put, Some(&name), Some(&key)));
        let (c, k) = (name.clone(), key.clone());
        self.write(Operation::Put, Some(name), Some(key), move |inner, w| {
            let expires = expires?;
            inner.put_locked(w, &c, &k, &value, now, expires, &opts.mode, inner.sync())
        })
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let name = self.inner.info.resolve(collection).to_owned();
        let now = Timestamp::now();
        let expires = ttl::expires_at(now, opts.ttl);
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let c = name.clone();
        self.write(Operation::PutMany, Some(name), None, move |inner, w| {
            let expires = expires?;
            if entries.is_empty() {
                return Ok(());
            }
            // Every file is flushed before its rename; the directory once at the end.
            let sync = inner.sync();
            for (k, v) in &entries {
                inner
                    .put_locked(w, &c, k, v, now, expires, &PutMode::Upsert, false)
                    .map_err(|e| e.with_key(k))?;
            }
            if sync {
                let dir = format::collection_dir(&inner.root, &c);
                // Files were written without flushing: flush each, then the directory.
                for (k, _) in &entries {
                    let path = dir.join(format::entry_file_name(k));
                    File::open(&path)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| io_msg(e, "cannot sync", &path).with_key(k))?;
                }
                sync_dir(&dir)?;
                sync_dir(&inner.root)?;
            }
            Ok(())
        })
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let name = self.inner.info.resolve(collection).to_owned();
        let key = key.to_owned();
        let (c, k) = (name.clone(), key.clone());
        self.write(Operation::Delete, Some(name), Some(key), move |inner, _| {
            let dir = format::collection_dir(&inner.root, &c);
            if !check_dir(&dir)? {
                return Ok(false);
            }
            let existed = inner.delete_locked(&dir, &c, &k, Timestamp::now())?;
            if inner.sync() {
                sync_dir(&dir)?;
            }
            Ok(existed)
        })
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let name = self.inner.info.resolve(collection).to_owned();
        let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        keys.sort();
        keys.dedup();
        let c = name.clone();
        self.write(Operation::DeleteMany, Some(name), None, move |inner, _| {
            let dir = format::collection_dir(&inner.root, &c);
            if keys.is_empty() || !check_dir(&dir)? {
                return Ok(0);
            }
            let now = Timestamp::now();
            let mut n = 0;
            for k in &keys {
                if inner
                    .delete_locked(&dir, &c, k, now)
                    .map_err(|e| e.with_key(k))?
                {
                    n += 1;
                }
            }
            if inner.sync() {
                sync_dir(&dir)?;
            }
            Ok(n)
        })
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        let now = Timestamp::now();
        ready(
            self.get_sync(Operation::Ttl, collection, key)
                .map(|d| d.map(|d| d.into_entry().ttl_at(now))),
        )
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
        let name = self.inner.info.resolve(collection).to_owned();
        let c = name.clone();
        self.write(Operation::Clear, Some(name), None, move |inner, _| {
            let dir = format::collection_dir(&inner.root, &c);
            if !check_dir(&dir)? {
                return Ok(0);
            }
            inner.clear_dir(&dir, Timestamp::now())
        })
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.write(Operation::Destroy, None, None, move |inner, _| {
            let now = Timestamp::now();
            for (name, _) in list_collection_dirs(&inner.root)? {
                inner.clear_dir(&inner.root.join(name), now)?;
            }
            Ok(())
        })
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.write(Operation::Cull, None, None, move |inner, _| {
            let now = Timestamp::now();
            let mut n = 0;
            let mut removed_dir = false;
            for (name, _) in list_collection_dirs(&inner.root)? {
                let dir = inner.root.join(name);
                let mut changed = false;
                for (file, _) in list_entry_files(&dir)? {
                    let path = dir.join(&file);
                    // Damaged files are kept: cull only removes what it knows has expired.
                    if let Ok(Some(doc)) = read_doc(&inner.root, &path)
                        && doc.is_expired_at(now)
                        && remove(&path)?
                    {
                        n += 1;
                        changed = true;
                    }
                }
                // Writers hold the lock, so every temporary file is a crashed writer's.
                for tmp in list_temp_files(&dir)? {
                    changed |= remove(&tmp)?;
                }
                if changed && inner.sync() {
                    sync_dir(&dir)?;
                }
                removed_dir |= remove_dir_if_empty(&dir);
            }
            if removed_dir && inner.sync() {
                sync_dir(&inner.root)?;
            }
            Ok(n)
        })
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        let taken = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Writes hold the writer mutex for their whole duration: taking it waits for the one
        // in progress. Every write is on disk when it returns, so there is nothing to flush.
        if let Some(open) = taken {
            drop(open.writer.lock().unwrap_or_else(PoisonError::into_inner));
        }
        ready(Ok(()))
    }
}
