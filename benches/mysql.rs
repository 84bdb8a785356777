//! MySQL / MariaDB: kv's `MysqlStore` (an sqlx pool) against raw sqlx running the store's own
//! statements on a pool of the same settings.
//!
//! Needs the test server (`cargo xtask services up mysql`; `KV_TEST_MYSQL_URL`); without it
//! the benchmarks are skipped with a message. Both sides use the table `kv_bench` in the kv
//! layout (see `kv::mysql::format`), created by the store; the benchmark drops it at the end.
//!
//! The baseline does what the store does for the same result: the store's SQL (copied below:
//! the statements are private to the store), prepared and cached per connection by sqlx as
//! the store's are; the value's column chosen by `format::is_json` (the benchmark's value is
//! not JSON, so it goes to `raw`); the client's clock in µs for `created_at` and the expiry
//! filter; `UUID_SHORT()` versions by the server; every column of a row decoded into value,
//! expiry, creation time and version. A batch write is the store's single multi-row
//! `INSERT ... ON DUPLICATE KEY UPDATE` (one implicit transaction, as the store's one chunk).
//! The pool has the store's settings (`test_before_acquire(false)`: no ping per operation) and
//! size. What the baseline does not do is kv's own work: the name checks, the statement text
//! built per batch call, the operation timeout and the error context.
//!
//! - `mysql_{get,put,get_many_100,put_many_100}`: one operation at a time (latency), driven by
//!   `block_on` on a multi-thread runtime.
//! - `mysql_scan_10000`: every entry of the collection in key order, one statement.
//! - `mysql_{get,put}_tasks_{1,64}`: 1 and 64 concurrent tasks on that runtime; both pools
//!   hold up to 64 connections, so each task can have a server connection of its own.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use kv::mysql::MysqlStore;
use kv::mysql::format::is_json;
use kv_benches::{BATCH, COLLECTION, Op, SerialOps, ServerBench, ServerProcs, TASKS, Workload};
use kv_core::{DestroyOptions, KvStore, Timestamp};
use sqlx::mysql::{MySql, MySqlArguments, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Row};

const STORE: &str = "mysql";
const TABLE: &str = "kv_bench";
/// The name of the raw client's benchmarks.
const BASELINE: &str = "baseline_sqlx";

const COLS: &str = "value, raw, expires_at, created_at, version";
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

/// The store's statements for table [`TABLE`] (`kv_store_mysql::format::Sql`, copied: they
/// are private to the store).
fn sql_get() -> String {
    format!("SELECT {COLS} FROM `{TABLE}` WHERE collection = ? AND `key` = ? AND {LIVE}")
}

fn sql_get_many(n: usize) -> String {
    let marks = vec!["?"; n].join(", ");
    format!(
        "SELECT `key`, {COLS} FROM `{TABLE}` WHERE collection = ? AND `key` IN ({marks}) AND {LIVE}"
    )
}

fn sql_upsert(n: usize) -> String {
    let rows = vec!["(?, ?, ?, ?, ?, ?, UUID_SHORT())"; n].join(", ");
    format!(
        "INSERT INTO `{TABLE}` (collection, `key`, {COLS}) VALUES {rows} \
         ON DUPLICATE KEY UPDATE value = VALUES(value), raw = VALUES(raw), \
         expires_at = VALUES(expires_at), created_at = VALUES(created_at), \
         version = VALUES(version)"
    )
}

fn sql_scan() -> String {
    format!(
        "SELECT `key`, {COLS} FROM `{TABLE}` WHERE collection = ? AND {LIVE} \
         AND `key` >= ? AND (? IS NULL OR `key` < ?) AND (? IS NULL OR `key` > ?) \
         ORDER BY `key` LIMIT ?"
    )
}

type Q<'q> = Query<'q, MySql, MySqlArguments>;

/// Binds the two value columns, as the store does: JSON text to `value`, the rest to `raw`.
fn bind_value<'q>(q: Q<'q>, value: &'q [u8]) -> Q<'q> {
    match std::str::from_utf8(value) {
        Ok(text) if is_json(value) => q.bind(Some(text)).bind(None::<&[u8]>),
        _ => q.bind(None::<&str>).bind(Some(value)),
    }
}

/// Decodes `value, raw, expires_at, created_at, version` from column `at`, as the store does.
fn decode(row: &MySqlRow, at: usize) -> (Bytes, Option<i64>, i64, u64) {
    let json: Option<String> = row.get(at);
    let raw: Option<Vec<u8>> = row.get(at + 1);
    let value = match (json, raw) {
        (Some(j), None) => Bytes::from(j),
        (None, Some(r)) => Bytes::from(r),
        _ => panic!("a row breaks the kv layout"),
    };
    (value, row.get(at + 2), row.get(at + 3), row.get(at + 4))
}

fn row_key(row: &MySqlRow) -> String {
    String::from_utf8(row.get(0)).expect("a UTF-8 key")
}

fn now_micros() -> i64 {
    Timestamp::now().as_unix_micros()
}

/// The raw pool and the statements, built once.
#[derive(Clone)]
struct Raw {
    pool: MySqlPool,
    get: Arc<str>,
    get_many: Arc<str>,
    upsert: Arc<str>,
    put_many: Arc<str>,
    scan: Arc<str>,
    w: Arc<Workload>,
}

#[derive(Clone)]
struct RawGet(Raw);

impl Op for RawGet {
    async fn run(&self, i: usize) {
        let row = sqlx::query(AssertSqlSafe(&*self.0.get))
            .bind(COLLECTION.as_bytes())
            .bind(self.0.w.key(i).as_bytes())
            .bind(now_micros())
            .fetch_optional(&self.0.pool)
            .await
            .expect("SELECT");
        let row = row.expect("SELECT: key missing");
        black_box(decode(&row, 0));
    }
}

#[derive(Clone)]
struct RawPut(Raw);

impl Op for RawPut {
    async fn run(&self, i: usize) {
        let q = sqlx::query(AssertSqlSafe(&*self.0.upsert))
            .bind(COLLECTION.as_bytes())
            .bind(self.0.w.key(i).as_bytes());
        bind_value(q, &self.0.w.value)
            .bind(None::<i64>)
            .bind(now_micros())
            .execute(&self.0.pool)
            .await
            .expect("INSERT ... ON DUPLICATE KEY UPDATE");
    }
}

#[derive(Clone)]
struct RawGetMany(Raw);

impl Op for RawGetMany {
    async fn run(&self, i: usize) {
        let keys = self.0.w.batch_keys(i);
        let mut q = sqlx::query(AssertSqlSafe(&*self.0.get_many)).bind(COLLECTION.as_bytes());
        for k in &keys {
            q = q.bind(k.as_bytes());
        }
        let rows = q
            .bind(now_micros())
            .fetch_all(&self.0.pool)
            .await
            .expect("SELECT ... IN");
        // In the order asked, as the store returns them.
        let mut found: std::collections::HashMap<String, _> =
            rows.iter().map(|r| (row_key(r), decode(r, 1))).collect();
        let out: Vec<_> = keys.iter().map(|k| found.remove(*k)).collect();
        assert_eq!(out.len(), BATCH);
        black_box(out);
    }
}

#[derive(Clone)]
struct RawPutMany(Raw);

impl Op for RawPutMany {
    async fn run(&self, i: usize) {
        let now = now_micros();
        let value: &[u8] = &self.0.w.value;
        let mut q = sqlx::query(AssertSqlSafe(&*self.0.put_many));
        for k in self.0.w.batch(i) {
            q = bind_value(
                q.bind(COLLECTION.as_bytes())
                    .bind(self.0.w.keys[k].as_bytes()),
                value,
            )
            .bind(None::<i64>)
            .bind(now);
        }
        q.execute(&self.0.pool)
            .await
            .expect("INSERT ... ON DUPLICATE KEY UPDATE");
    }
}

#[derive(Clone)]
struct RawScan(Raw);

impl Op for RawScan {
    async fn run(&self, _i: usize) {
        let n = self.0.w.keys.len();
        let limit = i64::try_from(n + 1).expect("a row limit");
        // The store's bindings for a whole-collection scan: empty prefix, no upper bound, no
        // cursor, one row more than the page to tell whether there is a next page.
        let rows = sqlx::query(AssertSqlSafe(&*self.0.scan))
            .bind(COLLECTION.as_bytes())
            .bind(now_micros())
            .bind(&b""[..])
            .bind(None::<&[u8]>)
            .bind(None::<&[u8]>)
            .bind(None::<&[u8]>)
            .bind(None::<&[u8]>)
            .bind(limit)
            .fetch_all(&self.0.pool)
            .await
            .expect("SELECT ... ORDER BY key");
        let items: Vec<_> = rows.iter().map(|r| (row_key(r), decode(r, 1))).collect();
        assert_eq!(items.len(), n, "scan: rows read");
        black_box(items);
    }
}

/// The server URL without kv's parameters, for sqlx.
fn base_url(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn benches(c: &mut Criterion) {
    let mut groups = kv_benches::server_group_names(STORE, &["get", "put"]);
    groups.push(kv_benches::scan_group_name(STORE));
    let Some(url) = kv_benches::service_url(STORE, "KV_TEST_MYSQL_URL", &groups) else {
        return;
    };
    let max_tasks = TASKS.iter().copied().max().unwrap_or(1);
    let raw_url = base_url(&url).to_owned();
    let kv_url = format!("{raw_url}?table={TABLE}&pool_size={max_tasks}");
    let rt = kv_benches::runtime();
    let w = Arc::new(Workload::standard());
    let procs = ServerProcs {
        comm: "mariadbd",
        cmdline: kv_benches::url_port(&url).map(|p| format!("--port={p}")),
    };

    let connected = rt.block_on(async {
        // kv first: it creates the table.
        let store = MysqlStore::connect(&kv_url)
            .await
            .map_err(|e| e.to_string())?;
        let dyn_store = kv::open(&kv_url).await.map_err(|e| e.to_string())?;
        // The store's pool settings, and as many connections.
        let pool = MySqlPoolOptions::new()
            .max_connections(u32::try_from(max_tasks).unwrap_or(u32::MAX))
            .min_connections(0)
            .test_before_acquire(false)
            .connect(&raw_url)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((store, dyn_store, pool))
    });
    let (store, dyn_store, pool) = match connected {
        Ok(c) => c,
        Err(e) => {
            kv_benches::skip(
                STORE,
                &format!("cannot connect to KV_TEST_MYSQL_URL: {e}"),
                &groups,
            );
            return;
        }
    };
    kv_benches::fill_async(&rt, &store, &w);
    let raw = Raw {
        pool,
        get: sql_get().into(),
        get_many: sql_get_many(BATCH).into(),
        upsert: sql_upsert(1).into(),
        put_many: sql_upsert(BATCH).into(),
        scan: sql_scan().into(),
        w: w.clone(),
    };

    let bench = ServerBench {
        store: STORE,
        baseline: BASELINE,
        server: procs,
        kv_static: store.clone(),
        kv_dyn: dyn_store,
        w,
    };
    let ops = SerialOps {
        get: RawGet(raw.clone()),
        put: RawPut(raw.clone()),
        get_many: RawGetMany(raw.clone()),
        put_many: RawPutMany(raw.clone()),
        scan: Some(RawScan(raw.clone())),
    };
    kv_benches::server_groups(c, &rt, &bench, &ops);

    if let Err(e) = rt.block_on(store.destroy_opts(DestroyOptions::default())) {
        eprintln!("kv-benches: mysql: dropping the table {TABLE} failed: {e}");
    }
}

criterion_group! {
    name = mysql_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(mysql_benches);
