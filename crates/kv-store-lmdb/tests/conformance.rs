//! The whole kv-conformance suite against the LMDB store with its default settings (durable
//! commits). Every store is a new environment in its own temporary directory, with a small
//! initial map (1 MiB) so that the suite's large values exercise the map growth.
//!
//! The corrupt hook stores bytes that are not a kv envelope with `LmdbStore::write_raw`; the
//! reopen hook closes the store and opens the environment again.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_lmdb::{LmdbStore, LmdbStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `LmdbStore`
/// behind it by its location (unique per store).
static STORES: Registry<LmdbStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(LmdbStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

async fn open() -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-lmdb-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = LmdbStore::builder(dir.path().join("kv.lmdb"))
        .map_size(1 << 20)
        .open()?;
    Ok(STORES.register(store, Arc::new(dir)))
}

/// Replaces the entry's envelope with bytes that are not one.
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (lmdb, _dir) = lookup(&store)?;
    lmdb.write_raw(&collection, &key, b"\xde\xad\xbe\xef: not a kv envelope")
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (lmdb, dir) = lookup(&store)?;
    store.close().await?;
    let again = LmdbStoreBuilder::from_config(lmdb.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

fn main() {
    Suite::new("lmdb", open)
        .corrupt(corrupt)
        .reopen(reopen)
        .run()
}
