//! The conformance harness of the DuckDB store: every store the suite opens is a new database
//! file in its own temporary directory, removed when the suite is done with the store (the last
//! handle drops the directory).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_duckdb::{DuckDbStore, DuckDbStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `DuckDbStore`
/// behind it by its location (its file path, unique per store).
static STORES: Registry<DuckDbStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(DuckDbStore, Arc<TempDir>)> {
    STORES.lookup(store)
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
    Ok(STORES.register(store, Arc::new(dir)))
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
    Ok(STORES.register(again, dir))
}

/// The whole suite, with the corrupt and reopen hooks.
pub fn suite(name: &str) -> Suite {
    Suite::new(name, open).corrupt(corrupt).reopen(reopen)
}
