//! The conformance harness of the safetensors store: every store the suite opens is a new file
//! in its own temporary directory, removed when the suite is done with the store (the last
//! handle drops the directory).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_safetensors::safetensors::SafeTensors;
use kv_store_safetensors::{Durability, SafetensorsStore, SafetensorsStoreBuilder, format};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the store behind it
/// by its location (its file path, unique per store).
static STORES: Registry<SafetensorsStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(SafetensorsStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

/// Wraps `store` for the suite, keeping `dir` alive as long as the store.
pub fn register(store: SafetensorsStore, dir: Arc<TempDir>) -> DynStore {
    STORES.register(store, dir)
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
    Ok(STORES.register(store, Arc::new(dir)))
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
    Ok(STORES.register(again, dir))
}

/// The whole suite against read-write stores on a file with `durability`, with the corrupt
/// and reopen hooks.
pub fn suite(name: &str, durability: Durability) -> Suite {
    Suite::new(name, move || open(durability))
        .corrupt(corrupt)
        .reopen(reopen)
}
