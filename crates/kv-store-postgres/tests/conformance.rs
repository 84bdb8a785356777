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
use std::future::Future;

use kv_core::{
    Bytes, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, DynStore,
    Entry, Error, ErrorKind, GetOptions, KvStore, KvStoreExt, PutManyOptions, PutOptions, Result,
    ScanOptions, ScanPage, StoreInfo, Ttl,
};
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
    std::sync::Arc::new(Harnessed { store })
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

/// The store under test, as the suite sees it.
struct Harnessed {
    store: PostgresStore,
}

fn main() {
    Suite::new("postgres", open)
        .corrupt(corrupt)
        .reopen(reopen)
        .needs_service(VAR, "cargo xtask services up postgres")
        .run()
}

// Plain delegation, except `destroy` after `close`: the suite cleans up with `destroy` after
// cases that closed the store, so the harness drops the table through a new connection.
#[allow(clippy::manual_async_fn)]
impl KvStore for Harnessed {
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
        async move {
            match self.store.destroy_opts(opts).await {
                Err(e) if e.kind() == ErrorKind::Closed => {
                    let again = PostgresStore::connect(&url_with(self.store.table())?).await?;
                    again.destroy().await?;
                    again.close().await
                }
                other => other,
            }
        }
    }

    fn cull_opts(&self, opts: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.store.cull_opts(opts)
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        // The suite closes stores of skipped cases without destroying them: drop a table that
        // holds nothing, so test runs leave no tables behind.
        async move {
            if self.store.collections().await.is_ok_and(|c| c.is_empty()) {
                let _ = self.store.destroy().await;
            }
            self.store.close().await
        }
    }
}
