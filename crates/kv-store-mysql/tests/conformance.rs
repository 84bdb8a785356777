//! The whole kv-conformance suite against a real MySQL or MariaDB server, whose URL is in
//! `KV_TEST_MYSQL_URL` (`cargo xtask services up mariadb`). Every `open` uses a new table,
//! which the suite's `destroy` drops again.
//!
//! The corrupt hook clears both value columns of a row through the pool (as another program
//! would); the reopen hook closes the store and connects again to the same table.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use kv_conformance::{Suite, service_url};

use kv_core::{DynStore, Error, ErrorKind, KvStore, Result};
use kv_store_mysql::MysqlStore;

const VAR: &str = "KV_TEST_MYSQL_URL";

static STORES: Mutex<BTreeMap<String, MysqlStore>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn url_with(table: &str) -> Result<String> {
    let base = service_url(VAR).ok_or_else(|| Error::new(ErrorKind::Config, "no URL"))?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}table={table}"))
}

fn register(store: MysqlStore) -> DynStore {
    STORES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(store.info().location.clone(), store.clone());
    std::sync::Arc::new(store)
}

fn lookup(store: &DynStore) -> Result<MysqlStore> {
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
    let store = MysqlStore::connect(&url_with(&table)?).await?;
    Ok(register(store))
}

async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let my = lookup(&store)?;
    let collection = my.info().resolve(&collection).to_owned();
    let sql = format!(
        "UPDATE `{}` SET value = NULL, raw = NULL WHERE collection = ? AND `key` = ?",
        my.table()
    );
    let r = kv_store_mysql::sqlx::query(kv_store_mysql::sqlx::AssertSqlSafe(sql))
        .bind(collection.as_bytes())
        .bind(key.as_bytes())
        .execute(my.pool())
        .await
        .map_err(|e| Error::new(ErrorKind::Backend, format!("corrupt: {e}")))?;
    if r.rows_affected() != 1 {
        return Err(Error::new(ErrorKind::Backend, "no row to corrupt"));
    }
    Ok(())
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let my = lookup(&store)?;
    store.close().await?;
    let again = MysqlStore::connect(&url_with(my.table())?).await?;
    Ok(register(again))
}

fn main() {
    Suite::new("mysql", open)
        .corrupt(corrupt)
        .reopen(reopen)
        .needs_service(VAR, "cargo xtask services up mariadb")
        .run()
}
