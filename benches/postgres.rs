//! PostgreSQL: kv's `PostgresStore` (a deadpool of tokio-postgres connections, prepared
//! statements) against raw tokio-postgres running the store's own SQL, prepared once per
//! connection.
//!
//! Needs the test server (`cargo xtask services up postgres`; `KV_TEST_POSTGRES_URL`);
//! without it the benchmarks are skipped with a message. Both sides use the table `kv_bench`
//! in the kv layout (see `kv_store_postgres::format`); the benchmark leaves its 10 000 rows
//! there, because `cargo xtask bench` then runs `pgbench` with the store's `SELECT` on them.
//!
//! - `postgres_{get,put,get_many_100,put_many_100}`: one operation at a time (latency), driven
//!   by `block_on` on a multi-thread runtime; the baseline uses one connection.
//! - `postgres_{get,put}_tasks_{1,64}`: 1 and 64 concurrent tasks. The baseline gives each
//!   task a connection of its own (as `pgbench -c 64` does); kv runs with `pool_size=64` and
//!   its default `shared_connections` (2): its point operations pipeline on two connections,
//!   which is the store's answer to the same load, not the same client setup.

use std::error::Error as StdError;
use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use kv::postgres::PostgresStore;
use kv::postgres::tokio_postgres::{self, Client, NoTls, Row, Statement};
use kv_benches::{
    BATCH, COLLECTION, NoScan, Op, SerialOps, ServerBench, ServerProcs, TASKS, Workload,
};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

const STORE: &str = "postgres";
const TABLE: &str = "kv_bench";

const COLS: &str = "value, raw, expires_at, created_at, version";
const LIVE: &str = "(expires_at IS NULL OR expires_at > $3)";
const SET_ALL: &str = "value = EXCLUDED.value, raw = EXCLUDED.raw, expires_at = EXCLUDED.expires_at, \
                       created_at = EXCLUDED.created_at, version = EXCLUDED.version";

/// The store's statements for table [`TABLE`] (`kv_store_postgres::format`, copied: they are
/// private to the store).
fn sql_get() -> String {
    format!("SELECT {COLS} FROM \"{TABLE}\" WHERE collection = $1 AND key = $2 AND {LIVE}")
}

fn sql_get_many() -> String {
    format!(
        "SELECT key, {COLS} FROM \"{TABLE}\" WHERE collection = $1 AND key = ANY($2) AND {LIVE}"
    )
}

fn sql_upsert() -> String {
    format!(
        "INSERT INTO \"{TABLE}\" (collection, key, {COLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, nextval('\"{TABLE}_version\"')) \
         ON CONFLICT (collection, key) DO UPDATE SET {SET_ALL}"
    )
}

fn sql_put_many() -> String {
    format!(
        "INSERT INTO \"{TABLE}\" (collection, key, {COLS}) \
         SELECT $1, u.k, u.v, u.r, $5, $6, nextval('\"{TABLE}_version\"') \
         FROM unnest($2::text[], $3::json[], $4::bytea[]) AS u(k, v, r) \
         ON CONFLICT (collection, key) DO UPDATE SET {SET_ALL}"
    )
}

/// The `json` column's parameter for a value that is not JSON (the benchmark's value goes to
/// `raw`): always NULL.
#[derive(Debug)]
struct NoJson;

impl ToSql for NoJson {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Ok(IsNull::Yes)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

/// The bytes of the `json` column.
struct JsonBytes(#[allow(dead_code)] Vec<u8>);

impl<'a> FromSql<'a> for JsonBytes {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(JsonBytes(raw.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }
}

/// Reads `value, raw, expires_at, created_at, version` from column `at`, as the store does.
fn decode(row: &Row, at: usize) -> (Bytes, Option<SystemTime>, Option<SystemTime>, i64) {
    let json: Option<JsonBytes> = row.get(at);
    let raw: Option<Vec<u8>> = row.get(at + 1);
    let value = match (json, raw) {
        (None, Some(r)) => Bytes::from(r),
        (Some(j), None) => Bytes::from(j.0),
        _ => panic!("a row breaks the kv layout"),
    };
    (value, row.get(at + 2), row.get(at + 3), row.get(at + 4))
}

/// One raw connection with the store's statements prepared on it.
struct RawConn {
    client: Client,
    get: Statement,
    get_many: Statement,
    upsert: Statement,
    put_many: Statement,
}

async fn raw_conn(url: &str) -> Result<RawConn, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("kv-benches: postgres: raw connection closed: {e}");
        }
    });
    Ok(RawConn {
        get: client.prepare(&sql_get()).await?,
        get_many: client.prepare(&sql_get_many()).await?,
        upsert: client.prepare(&sql_upsert()).await?,
        put_many: client.prepare(&sql_put_many()).await?,
        client,
    })
}

/// Raw connections; operation `i` runs on connection `i mod n` (with [`bench_tasks`], task
/// `t` always gets connection `t`).
#[derive(Clone)]
struct Raw {
    conns: Arc<Vec<RawConn>>,
    w: Arc<Workload>,
}

impl Raw {
    fn conn(&self, i: usize) -> &RawConn {
        &self.conns[i % self.conns.len()]
    }
}

#[derive(Clone)]
struct RawGet(Raw);

impl Op for RawGet {
    async fn run(&self, i: usize) {
        let c = self.0.conn(i);
        let now = SystemTime::now();
        let row = c
            .client
            .query_opt(&c.get, &[&COLLECTION, &self.0.w.key(i), &now])
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
        let c = self.0.conn(i);
        let now = SystemTime::now();
        let expires: Option<SystemTime> = None;
        let raw: &[u8] = &self.0.w.value;
        c.client
            .execute(
                &c.upsert,
                &[
                    &COLLECTION,
                    &self.0.w.key(i),
                    &None::<NoJson>,
                    &Some(raw),
                    &expires,
                    &now,
                ],
            )
            .await
            .expect("INSERT ... ON CONFLICT");
    }
}

#[derive(Clone)]
struct RawGetMany(Raw);

impl Op for RawGetMany {
    async fn run(&self, i: usize) {
        let c = self.0.conn(i);
        let keys = self.0.w.batch_keys(i);
        let now = SystemTime::now();
        let rows = c
            .client
            .query(&c.get_many, &[&COLLECTION, &keys, &now])
            .await
            .expect("SELECT ... ANY");
        // In the order asked, as the store returns them.
        let mut found: std::collections::HashMap<String, _> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), decode(r, 1)))
            .collect();
        let out: Vec<_> = keys.iter().map(|k| found.remove(*k)).collect();
        assert_eq!(out.len(), BATCH);
        black_box(out);
    }
}

#[derive(Clone)]
struct RawPutMany(Raw);

impl Op for RawPutMany {
    async fn run(&self, i: usize) {
        let c = self.0.conn(i);
        let keys = self.0.w.batch_keys(i);
        let jsons: Vec<Option<NoJson>> = keys.iter().map(|_| None).collect();
        let raws: Vec<Option<&[u8]>> = keys.iter().map(|_| Some(&self.0.w.value[..])).collect();
        let now = SystemTime::now();
        let expires: Option<SystemTime> = None;
        c.client
            .execute(
                &c.put_many,
                &[&COLLECTION, &keys, &jsons, &raws, &expires, &now],
            )
            .await
            .expect("INSERT ... unnest");
    }
}

/// The server URL without kv's parameters, for tokio-postgres.
fn base_url(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn benches(c: &mut Criterion) {
    let groups = kv_benches::server_group_names(STORE, &["get", "put"]);
    let Some(url) = kv_benches::service_url(STORE, "KV_TEST_POSTGRES_URL", &groups) else {
        return;
    };
    let max_tasks = TASKS.iter().copied().max().unwrap_or(1);
    let raw_url = base_url(&url).to_owned();
    let kv_url = format!("{raw_url}?table={TABLE}&pool_size={max_tasks}");
    let rt = kv_benches::runtime();
    let w = Arc::new(Workload::standard());
    let procs = ServerProcs {
        comm: "postgres",
        cmdline: None,
    };

    let connected = rt.block_on(async {
        // kv first: it creates the table the raw statements are prepared against.
        let store = PostgresStore::connect(&kv_url)
            .await
            .map_err(|e| e.to_string())?;
        let dyn_store = kv::open(&kv_url).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((store, dyn_store))
    });
    let (store, dyn_store) = match connected {
        Ok(c) => c,
        Err(e) => {
            kv_benches::skip(
                STORE,
                &format!("cannot connect to KV_TEST_POSTGRES_URL: {e}"),
                &groups,
            );
            return;
        }
    };
    kv_benches::fill_async(&rt, &store, &w);
    let connect_raw = |n: usize| {
        rt.block_on(async {
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                conns.push(raw_conn(&raw_url).await.expect("a raw connection"));
            }
            Raw {
                conns: Arc::new(conns),
                w: w.clone(),
            }
        })
    };
    let raw = connect_raw(1);

    let bench = ServerBench {
        store: STORE,
        baseline: "baseline_tokio_postgres",
        server: procs,
        kv_static: store,
        kv_dyn: dyn_store,
        w: w.clone(),
    };
    // One operation at a time.
    let ops = SerialOps {
        get: RawGet(raw.clone()),
        put: RawPut(raw.clone()),
        get_many: RawGetMany(raw.clone()),
        put_many: RawPutMany(raw.clone()),
        scan: None::<NoScan>,
    };
    kv_benches::server_serial_groups(c, &rt, &bench, &ops);
    drop(raw);

    // Concurrent tasks: the raw client with one server connection per task (as pgbench), kv
    // with its defaults (point operations pipelined on its shared connections).
    for tasks in TASKS {
        let raw = connect_raw(tasks);
        let ops = (&RawGet(raw.clone()), &RawPut(raw.clone()));
        kv_benches::server_task_groups(c, &rt, &bench, tasks, ops);
    }
}

criterion_group! {
    name = postgres_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(postgres_benches);
