//! Test support for store crates: the conformance harness's
//! bookkeeping of open stores and their temporary directories.
//!
//! The conformance suite hands its `corrupt` and `reopen` hooks a `DynStore`, which cannot be
//! downcast to the concrete store. A [`Registry`] wraps each store the harness opens in a
//! [`TestStore`] that owns the store's temporary directory (deleted with the last handle) and
//! remembers the store by its location, so the hooks get the concrete store back with
//! [`Registry::lookup`].
//!
//! For tests only: these helpers panic on failure.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use kv_core::{
    Bytes, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, DynStore,
    Entry, Error, ErrorKind, GetOptions, KvStore, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};
use tempfile::TempDir;

/// The stores a test harness has opened, by location (`StoreInfo::location`, unique per
/// store), each with the temporary directory it lives in.
///
/// Declare one per harness as a `static`.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use kv_core::KvStore;
/// use kv_engine::testing::Registry;
/// use kv_store_memory::MemoryStore;
///
/// static STORES: Registry<MemoryStore> = Registry::new();
///
/// let dir = tempfile::tempdir().unwrap();
/// let dynamic: kv_core::DynStore = STORES.register(MemoryStore::new(), Arc::new(dir));
/// // In a conformance hook: the concrete store and its directory again.
/// let (store, dir) = STORES.lookup(&dynamic).unwrap();
/// assert_eq!(store.info().kind, dynamic.info().kind);
/// drop((dynamic, store));
/// assert!(dir.path().exists()); // `dir` still holds the directory
/// ```
pub struct Registry<S> {
    stores: Mutex<BTreeMap<String, Registered<S>>>,
    next_id: AtomicU64,
}

struct Registered<S> {
    id: u64,
    store: S,
    dir: Weak<TempDir>,
}

impl<S> Registry<S> {
    /// An empty registry, for a `static`.
    ///
    /// # Example
    ///
    /// ```
    /// use kv_engine::testing::Registry;
    ///
    /// static STORES: Registry<kv_store_memory::MemoryStore> = Registry::new();
    /// ```
    pub const fn new() -> Self {
        Registry {
            stores: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn stores(&self) -> MutexGuard<'_, BTreeMap<String, Registered<S>>> {
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: KvStore + Clone + Send + Sync + 'static> Registry<S> {
    /// Wraps `store` in a [`TestStore`] that keeps `dir` alive, and remembers it by location
    /// (replacing an earlier store at the same location, as a reopen does).
    ///
    /// # Example
    ///
    /// See [`Registry`].
    pub fn register(&'static self, store: S, dir: Arc<TempDir>) -> DynStore {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.stores().insert(
            store.info().location.clone(),
            Registered {
                id,
                store: store.clone(),
                dir: Arc::downgrade(&dir),
            },
        );
        Arc::new(TestStore {
            registry: self,
            id,
            store,
            _dir: dir,
        })
    }

    /// The concrete store behind `store` and its directory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Backend`] if `store` was not registered here (or is gone).
    ///
    /// # Example
    ///
    /// See [`Registry`].
    pub fn lookup(&self, store: &DynStore) -> Result<(S, Arc<TempDir>)> {
        let stores = self.stores();
        let found = stores.get(&store.info().location).and_then(|r| {
            let dir = r.dir.upgrade()?;
            Some((r.store.clone(), dir))
        });
        found.ok_or_else(|| Error::new(ErrorKind::Backend, "store is not from this harness"))
    }
}

/// A store plus the temporary directory it lives in, deleted with the last handle; made by
/// [`Registry::register`]. Every operation is the store's own.
pub struct TestStore<S: KvStore + Clone + Send + Sync + 'static> {
    registry: &'static Registry<S>,
    id: u64,
    store: S,
    _dir: Arc<TempDir>,
}

impl<S: KvStore + Clone + Send + Sync + 'static> Drop for TestStore<S> {
    fn drop(&mut self) {
        let mut stores = self.registry.stores();
        let location = &self.store.info().location;
        if stores.get(location).is_some_and(|r| r.id == self.id) {
            stores.remove(location);
        }
    }
}

// Plain delegation: the wrapper only ties the temporary directory to the store's lifetime.
impl<S: KvStore + Clone + Send + Sync + 'static> KvStore for TestStore<S> {
    fn info(&self) -> &StoreInfo {
        self.store.info()
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        self.store.get_opts(collection, key, opts)
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        self.store.get_many_opts(collection, keys, opts)
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        self.store.put_opts(collection, key, value, opts)
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        self.store.put_many_opts(collection, entries, opts)
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        opts: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        self.store.delete_opts(collection, key, opts)
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.store.delete_many_opts(collection, keys, opts)
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        self.store.ttl_opts(collection, key, opts)
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        self.store.scan_opts(collection, opts)
    }

    fn collections_opts(
        &self,
        opts: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.store.collections_opts(opts)
    }

    fn clear_opts(
        &self,
        collection: &str,
        opts: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.store.clear_opts(collection, opts)
    }

    fn destroy_opts(&self, opts: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.store.destroy_opts(opts)
    }

    fn cull_opts(&self, opts: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.store.cull_opts(opts)
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        self.store.close()
    }
}

/// What [`hold_until_released`] prints once the child holds its resource.
pub const READY: &str = "LOCKED";

/// A second process for two-process tests (a lock held by another process): this test binary
/// run again with only `test` selected and `env=value` set. The child's test does its part
/// (opens the store, ...), calls [`hold_until_released`] and finishes when the parent calls
/// [`HoldingChild::release`].
///
/// Test helper: every failure panics with a message.
///
/// # Example
///
/// ```no_run
/// use kv_engine::testing::{HoldingChild, hold_until_released};
///
/// const CHILD_ENV: &str = "MY_STORE_LOCK_CHILD";
///
/// #[test]
/// fn child_holds_the_lock() {
///     let Some(path) = std::env::var_os(CHILD_ENV) else {
///         return; // not started by the parent test
///     };
///     let lock = std::fs::File::create(&path).unwrap();
///     lock.try_lock().unwrap();
///     hold_until_released();
/// }
///
/// #[test]
/// fn second_process_is_refused() {
///     let dir = tempfile::tempdir().unwrap();
///     let path = dir.path().join("x.lock");
///     let child = HoldingChild::spawn("child_holds_the_lock", CHILD_ENV, &path);
///     assert!(std::fs::File::open(&path).unwrap().try_lock().is_err());
///     child.release();
/// }
/// ```
#[derive(Debug)]
pub struct HoldingChild {
    child: std::process::Child,
}

impl HoldingChild {
    /// Starts the child and waits (up to a minute) until it prints [`READY`].
    ///
    /// # Panics
    ///
    /// If the child cannot be started or never reports ready.
    ///
    /// # Example
    ///
    /// See [`HoldingChild`].
    pub fn spawn(test: &str, env: &str, value: impl AsRef<std::ffi::OsStr>) -> HoldingChild {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(env, value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        // libtest prints its own lines first; with --nocapture the child's line may start with
        // `test NAME ... `.
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut told = false;
            // Keep draining after the signal: closing the pipe early would fail the child.
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if !told && line.trim_end().ends_with(READY) {
                    told = true;
                    let _ = tx.send(true);
                }
            }
            if !told {
                let _ = tx.send(false);
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(true) => HoldingChild { child },
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child never reported holding the lock: {outcome:?}");
            }
        }
    }

    /// Lets the child go (closes its standard input) and waits for it.
    ///
    /// # Panics
    ///
    /// If the child failed.
    ///
    /// # Example
    ///
    /// See [`HoldingChild`].
    pub fn release(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait for the child");
        assert!(status.success(), "child failed: {status}");
    }
}

/// In the child of a [`HoldingChild`]: prints [`READY`], then waits until the parent
/// releases it (closes the child's standard input).
///
/// # Example
///
/// See [`HoldingChild`].
pub fn hold_until_released() {
    use std::io::Write;

    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}").expect("stdout");
    out.flush().expect("stdout");
    drop(out);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
