//! The conformance harness of the DuckDB store: every store the suite opens is a new database
//! file in its own temporary directory, removed when the suite is done with the store (the last
//! handle drops the directory).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kv_conformance::Suite;
use kv_core::{
    Bytes, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, DynStore,
    Entry, Error, ErrorKind, GetOptions, KvStore, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};
use kv_store_duckdb::{DuckDbStore, DuckDbStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `DuckDbStore`
/// behind it by its location (its file path, unique per store).
struct Registered {
    id: u64,
    store: DuckDbStore,
    dir: Weak<TempDir>,
}

static REGISTRY: Mutex<BTreeMap<String, Registered>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<String, Registered>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A store plus the temporary directory of its file, deleted with the last handle.
struct TestStore {
    id: u64,
    store: DuckDbStore,
    _dir: Arc<TempDir>,
}

impl TestStore {
    fn register(store: DuckDbStore, dir: Arc<TempDir>) -> DynStore {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        registry().insert(
            store.info().location.clone(),
            Registered {
                id,
                store: store.clone(),
                dir: Arc::downgrade(&dir),
            },
        );
        Arc::new(TestStore {
            id,
            store,
            _dir: dir,
        })
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let mut reg = registry();
        let location = &self.store.info().location;
        if reg.get(location).is_some_and(|r| r.id == self.id) {
            reg.remove(location);
        }
    }
}

fn lookup(store: &DynStore) -> Result<(DuckDbStore, Arc<TempDir>)> {
    let reg = registry();
    let found = reg.get(&store.info().location).and_then(|r| {
        let dir = r.dir.upgrade()?;
        Some((r.store.clone(), dir))
    });
    found.ok_or_else(|| Error::new(ErrorKind::Backend, "store is not from this harness"))
}

async fn open() -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-duckdb-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    // One DuckDB worker thread per store: the suite opens many stores at once.
    let store = DuckDbStore::builder(dir.path().join("kv.duckdb"))
        .threads(1)
        .open()?;
    Ok(TestStore::register(store, Arc::new(dir)))
}

/// Makes the row undecodable the only way a typed table allows: neither `value` nor `raw`.
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (duck, _dir) = lookup(&store)?;
    let collection = duck.info().resolve(&collection).to_owned();
    let sql = format!(
        "UPDATE {} SET value = NULL, raw = NULL WHERE collection = ? AND key = ?",
        duck.table()
    );
    let changed = duck
        .with_connection(|conn| conn.execute(&sql, [collection.as_str(), key.as_str()]))?
        .map_err(|e| Error::new(ErrorKind::Backend, format!("duckdb: {e}")))?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Backend,
            "the row to corrupt is missing",
        ))
    }
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (duck, dir) = lookup(&store)?;
    store.close().await?;
    let again = DuckDbStoreBuilder::from_config(duck.config().clone()).open()?;
    Ok(TestStore::register(again, dir))
}

/// The whole suite, with the corrupt and reopen hooks.
pub fn suite(name: &str) -> Suite {
    Suite::new(name, open).corrupt(corrupt).reopen(reopen)
}

// Plain delegation: the wrapper only ties the temporary directory to the store's lifetime.
impl KvStore for TestStore {
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
