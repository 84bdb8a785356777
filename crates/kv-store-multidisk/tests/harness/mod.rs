//! The conformance harness of the multidisk store: every store the suite opens is a new directory in
//! its own temporary directory, removed when the suite is done with the store (the last handle
//! drops the directory).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_multidisk::{Durability, MultiDiskStore, MultiDiskStoreBuilder, format};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `MultiDiskStore`
/// behind it by its location (its directory, unique per store).
static STORES: Registry<MultiDiskStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(MultiDiskStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

fn redb_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Backend, format!("redb: {e}"))
}

async fn open(durability: Durability) -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-multidisk-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = MultiDiskStore::builder(dir.path().join("kv"))
        .durability(durability)
        .open()?;
    Ok(STORES.register(store, Arc::new(dir)))
}

async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (disk, _dir) = lookup(&store)?;
    let db = disk.database(&collection)?;
    let txn = db.begin_write().map_err(redb_err)?;
    {
        let mut t = txn.open_table(format::DATA_TABLE).map_err(redb_err)?;
        t.insert(key.as_str(), &b"\xde\xad\xbe\xef: not a kv envelope"[..])
            .map_err(redb_err)?;
    }
    txn.commit().map_err(redb_err)
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (disk, dir) = lookup(&store)?;
    store.close().await?;
    let again = MultiDiskStoreBuilder::from_config(disk.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

/// The whole suite against stores opened with `durability`, with the corrupt and reopen hooks.
pub fn suite(name: &str, durability: Durability) -> Suite {
    Suite::new(name, move || open(durability))
        .corrupt(corrupt)
        .reopen(reopen)
}
