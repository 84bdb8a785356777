//! The conformance harness of the jsonfile store: every store the suite opens is a new JSON file in
//! its own temporary directory, removed when the suite is done with the store (the last handle
//! drops the directory).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_jsonfile::{Durability, JsonFileStore, JsonFileStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `JsonFileStore`
/// behind it by its location (its file path, unique per store).
static STORES: Registry<JsonFileStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(JsonFileStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

async fn open(durability: Durability) -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-jsonfile-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = JsonFileStore::builder(dir.path().join("kv.json"))
        .durability(durability)
        .open()?;
    Ok(STORES.register(store, Arc::new(dir)))
}

/// Replaces the entry in the file with something that is not an entry, then makes the store
/// read the file again.
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (js, _dir) = lookup(&store)?;
    js.flush()?;
    let path = js.path().to_path_buf();
    let bad = |e: serde_json::Error| Error::new(ErrorKind::Backend, e.to_string());
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(Error::from)?).map_err(bad)?;
    let c = js.info().resolve(&collection).to_owned();
    doc["collections"][c.as_str()][key.as_str()] =
        serde_json::Value::String("\u{de}\u{ad}: not a kv entry".to_owned());
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).map_err(bad)?).map_err(Error::from)?;
    js.reload()
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (js, dir) = lookup(&store)?;
    store.close().await?;
    let again = JsonFileStoreBuilder::from_config(js.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

/// The whole suite against stores opened with `durability`, with the corrupt and reopen hooks.
pub fn suite(name: &str, durability: Durability) -> Suite {
    Suite::new(name, move || open(durability))
        .corrupt(corrupt)
        .reopen(reopen)
}
