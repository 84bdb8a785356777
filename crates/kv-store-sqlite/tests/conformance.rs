//! The whole kv-conformance suite against the SQLite store with its default settings (WAL,
//! `synchronous=FULL`). Every store is a new database file in its own temporary directory.
//!
//! The corrupt hook writes through a second, independent connection to the same file (as
//! another process would); the reopen hook closes the store and opens the file again.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_sqlite::rusqlite::{Connection, params};
use kv_store_sqlite::{SqliteStore, SqliteStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `SqliteStore`
/// behind it by its location (unique per store).
static STORES: Registry<SqliteStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(SqliteStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

fn sql_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Backend, format!("sqlite: {e}"))
}

async fn open() -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-sqlite-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = SqliteStore::open_path(dir.path().join("kv.db"))?;
    Ok(STORES.register(store, Arc::new(dir)))
}

/// Makes the row's value a TEXT instead of a BLOB, through another connection.
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (sqlite, _dir) = lookup(&store)?;
    let collection = sqlite.info().resolve(&collection).to_owned();
    let conn = Connection::open(sqlite.path()).map_err(sql_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_err)?;
    let n = conn
        .execute(
            "UPDATE kv_entries SET value = 'not a blob' WHERE collection = ?1 AND key = ?2",
            params![collection, key],
        )
        .map_err(sql_err)?;
    if n != 1 {
        return Err(Error::new(ErrorKind::Backend, "no row to corrupt"));
    }
    Ok(())
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (sqlite, dir) = lookup(&store)?;
    store.close().await?;
    let again = SqliteStoreBuilder::from_config(sqlite.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

fn main() {
    Suite::new("sqlite", open)
        .corrupt(corrupt)
        .reopen(reopen)
        .run()
}
