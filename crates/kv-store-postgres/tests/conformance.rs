//! The whole kv-conformance suite against a real PostgreSQL server, whose URL is in
//! `KV_TEST_POSTGRES_URL` (`cargo xtask services up postgres`). Every `open` uses a new table,
//! which the suite's `destroy` drops again.
//!
//! The corrupt hook writes a row that breaks the format through another connection (as
//! another program would); the reopen hook closes the store and connects again to the same
//! table.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use kv_conformance::{Suite, service_url};

use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_store_postgres::PostgresStore;

const VAR: &str = "KV_TEST_POSTGRES_URL";

static STORES: Mutex<BTreeMap<String, PostgresStore>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn url_with(table: &str) -> Result<String> {
    let base = service_url(VAR).ok_or_else(|| Error::new(ErrorKind::Config, "no URL"))?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}table={table}"))
}

fn register(store: PostgresStore) -> DynStore {
    STORES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(store.info().location.clone(), store.clone());
    std::sync::Arc::new(store)
}

fn lookup(store: &DynStore) -> Result<PostgresStore> {
    STORES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&store.info().location)
        .cloned()
        .ok_or_else(|| Error::new(ErrorKind::Backend, "store is not from this harness"))
}

async fn open() -> Result<DynStore> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let table = format!("kvt_{}_{n}_{nanos}", std::process::id());
    let store = PostgresStore::connect(&url_with(&table)?).await?;
    Ok(register(store))
}

/// Sets both value columns to NULL (dropping the CHECK constraint first).
async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let pg = lookup(&store)?;
    let collection = pg.info().resolve(&collection).to_owned();
    let t = pg.table().to_owned();
    let client = pg.client().await?;
    let err = |e: kv_store_postgres::tokio_postgres::Error| {
        Error::new(ErrorKind::Backend, format!("corrupt: {e}"))
    };
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{t}\" DROP CONSTRAINT IF EXISTS \"{t}_one_value\""
        ))
        .await
        .map_err(err)?;
    let n = client
        .execute(
            &format!(
                "UPDATE \"{t}\" SET value = NULL, raw = NULL WHERE collection = $1 AND key = $2"
            ),
            &[&collection, &key],
        )
        .await
        .map_err(err)?;
    if n != 1 {
        return Err(Error::new(ErrorKind::Backend, "no row to corrupt"));
    }
    Ok(())
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let pg = lookup(&store)?;
    store.close().await?;
    let again = PostgresStore::connect(&url_with(pg.table())?).await?;
    Ok(register(again))
}

fn main() {
    Suite::new("postgres", open)
        .corrupt(corrupt)
        .reopen(reopen)
        .needs_service(VAR, "cargo xtask services up postgres")
        .run()
}
