//! The conformance harness: every store the suite opens is a new database in
//! its own temporary directory, removed when the suite is done with the store (the last handle
//! drops the directory).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_leveldb::{LevelDbStore, LevelDbStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `LevelDbStore`
/// behind it by its location (its file path, unique per store).
static STORES: Registry<LevelDbStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(LevelDbStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

async fn open(sync: bool) -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-leveldb-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = LevelDbStore::builder(dir.path().join("db"))
        .sync(sync)
        .open()?;
    Ok(STORES.register(store, Arc::new(dir)))
}

async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (db, _dir) = lookup(&store)?;
    db.put_raw(
        &collection,
        &key,
        b"\xde\xad\xbe\xef: not a kv envelope".to_vec(),
    )
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (db, dir) = lookup(&store)?;
    store.close().await?;
    let again = LevelDbStoreBuilder::from_config(db.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

/// The whole suite against stores opened with `sync`, with the corrupt and reopen hooks.
pub fn suite(name: &str, sync: bool) -> Suite {
    Suite::new(name, move || open(sync))
        .corrupt(corrupt)
        .reopen(reopen)
}
