//! The conformance harness of the safetensors store: every store the suite opens is a new file
//! in its own temporary directory, removed when the suite is done with the store (the last
//! handle drops the directory).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kv_conformance::Suite;
use kv_core::{
    Bytes, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, DynStore,
    Entry, Error, ErrorKind, GetOptions, KvStore, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};
use kv_store_safetensors::safetensors::SafeTensors;
use kv_store_safetensors::{Durability, SafetensorsStore, SafetensorsStoreBuilder, format};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the store behind it
/// by its location (its file path, unique per store).
struct Registered {
    id: u64,
    store: SafetensorsStore,
    dir: Weak<TempDir>,
}

static REGISTRY: Mutex<BTreeMap<String, Registered>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<String, Registered>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A store plus the temporary directory of its file, deleted with the last handle.
pub struct TestStore {
    id: u64,
    store: SafetensorsStore,
    _dir: Arc<TempDir>,
}

impl TestStore {
    pub fn register(store: SafetensorsStore, dir: Arc<TempDir>) -> DynStore {
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

fn lookup(store: &DynStore) -> Result<(SafetensorsStore, Arc<TempDir>)> {
    let reg = registry();
    let found = reg.get(&store.info().location).and_then(|r| {
        let dir = r.dir.upgrade()?;
        Some((r.store.clone(), dir))
    });
    found.ok_or_else(|| Error::new(ErrorKind::Backend, "store is not from this harness"))
}

pub fn tempdir() -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix("kv-store-safetensors-conformance-")
        .tempdir()
        .map_err(Error::from)
}

async fn open(durability: Durability) -> Result<DynStore> {
    let dir = tempdir()?;
    let store = SafetensorsStore::builder(dir.path().join("kv.safetensors"))
        .read_write()
        .durability(durability)
        .open()?;
    Ok(TestStore::register(store, Arc::new(dir)))
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Backend, e.to_string())
}

/// Writes the file, replaces the entry's kv record in `__metadata__` with junk, reloads.
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (st, _dir) = lookup(&store)?;
    st.flush()?;
    let path = st.path().ok_or_else(|| backend("no file"))?.to_owned();
    let bytes = std::fs::read(&path)?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(backend)?;
    let mut meta: HashMap<String, String> = metadata.metadata().clone().unwrap_or_default();
    let info = st.info();
    let name = format::tensor_name(&info.default_collection, info.resolve(&collection), &key);
    let mut entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(meta.get(format::META_ENTRIES).map_or("{}", String::as_str))
            .map_err(backend)?;
    entries.insert(name, serde_json::Value::String("not a kv record".into()));
    meta.insert(
        format::META_ENTRIES.to_owned(),
        serde_json::Value::Object(entries).to_string(),
    );
    let tensors = SafeTensors::deserialize(&bytes).map_err(backend)?;
    let views = tensors.tensors();
    let image = kv_store_safetensors::safetensors::serialize(
        views.iter().map(|(n, v)| (n.as_str(), v)),
        Some(meta),
    )
    .map_err(backend)?;
    std::fs::write(&path, image)?;
    st.reload()
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (st, dir) = lookup(&store)?;
    store.close().await?;
    let again = SafetensorsStoreBuilder::from_config(st.config().clone()).open()?;
    Ok(TestStore::register(again, dir))
}

/// The whole suite against read-write stores on a file with `durability`, with the corrupt
/// and reopen hooks.
pub fn suite(name: &str, durability: Durability) -> Suite {
    Suite::new(name, move || open(durability))
        .corrupt(corrupt)
        .reopen(reopen)
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
