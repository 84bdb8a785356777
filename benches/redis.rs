//! Redis: kv's `RedisStore` against the `redis` crate sending the identical commands over the
//! same connection type (`ConnectionManager`, a reconnecting multiplexed connection, which
//! pipelines the requests of concurrent tasks on one socket).
//!
//! Needs the test server (`cargo xtask services up redis`; `KV_TEST_REDIS_URL`); without it
//! the benchmarks are skipped with a message. Everything lives in database 13 of that server,
//! under the namespace `kvbench`, and is deleted at the end.
//!
//! Both sides store the same bytes under the same keys: the baseline writes
//! `SET {kvbench:bench}key-000042 <envelope + 1 KiB>` (the envelope encoded by
//! `kv_core::envelope`, as the store does), reads with `GET`/`MGET` and decodes the envelope;
//! a batch write is `MULTI`, 100 × `SET`, `EXEC` in one round trip.
//!
//! - `redis_{get,put,get_many_100,put_many_100}`: one operation at a time (latency), driven by
//!   `block_on` on a multi-thread runtime.
//! - `redis_{get,put}_tasks_{1,64}`: 1 and 64 concurrent tasks on that runtime sharing one
//!   connection (throughput; compared with `redis-benchmark` by `cargo xtask bench`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use kv::redis::RedisStore;
use kv::redis::redis;
use kv_benches::{BATCH, NoScan, Op, SerialOps, ServerBench, ServerProcs, Workload};
use kv_core::envelope::{self, Meta};
use kv_core::{DestroyOptions, KvStore, Timestamp};
use redis::aio::ConnectionManager;

const STORE: &str = "redis";
/// The database of the test server the benchmarks use (the tests use database 0).
const DB: u32 = 13;
const NAMESPACE: &str = "kvbench";
const BASELINE: &str = "baseline_redis_rs";

/// The raw client: one `ConnectionManager` (cloned per call, as the store does) and the
/// Redis keys of the workload, computed once.
#[derive(Clone)]
struct Raw {
    conn: ConnectionManager,
    keys: Arc<Vec<Vec<u8>>>,
    w: Arc<Workload>,
    version: Arc<AtomicU64>,
}

impl Raw {
    fn key(&self, i: usize) -> &[u8] {
        &self.keys[self.w.index(i)]
    }

    fn encode(&self) -> Vec<u8> {
        let meta = Meta {
            expires_at: None,
            created_at: Some(Timestamp::now()),
            version: Some(self.version.fetch_add(1, Ordering::Relaxed)),
        };
        envelope::encode(&meta, &self.w.value)
    }
}

fn decode(raw: Option<Vec<u8>>) -> Option<(Meta, Bytes)> {
    raw.map(|r| envelope::decode(Bytes::from(r)).expect("a kv envelope"))
}

#[derive(Clone)]
struct RawGet(Raw);

impl Op for RawGet {
    async fn run(&self, i: usize) {
        let mut c = self.0.conn.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.0.key(i))
            .query_async(&mut c)
            .await
            .expect("GET");
        assert!(raw.is_some(), "GET: key missing");
        black_box(decode(raw));
    }
}

#[derive(Clone)]
struct RawPut(Raw);

impl Op for RawPut {
    async fn run(&self, i: usize) {
        let mut c = self.0.conn.clone();
        let value = self.0.encode();
        redis::cmd("SET")
            .arg(self.0.key(i))
            .arg(value)
            .query_async::<()>(&mut c)
            .await
            .expect("SET");
    }
}

#[derive(Clone)]
struct RawGetMany(Raw);

impl Op for RawGetMany {
    async fn run(&self, i: usize) {
        let mut c = self.0.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for k in self.0.w.batch(i) {
            cmd.arg(&self.0.keys[k]);
        }
        let raws: Vec<Option<Vec<u8>>> = cmd.query_async(&mut c).await.expect("MGET");
        let decoded: Vec<_> = raws.into_iter().map(decode).collect();
        assert_eq!(decoded.len(), BATCH);
        black_box(decoded);
    }
}

#[derive(Clone)]
struct RawPutMany(Raw);

impl Op for RawPutMany {
    async fn run(&self, i: usize) {
        let mut c = self.0.conn.clone();
        let mut p = redis::pipe();
        p.atomic();
        for k in self.0.w.batch(i) {
            p.cmd("SET").arg(&self.0.keys[k]).arg(self.0.encode());
        }
        p.query_async::<()>(&mut c).await.expect("MULTI/SET/EXEC");
    }
}

/// The port of `redis://[user@]host:port[/db][?query]`, to tell the test server's process from
/// the other Redis servers of the machine.
fn port_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let (_, port) = hostport.rsplit_once(':')?;
    Some(port)
}

/// `redis://host:port` of the test server → the same server, database [`DB`].
fn with_db(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    format!("{base}/{DB}")
}

fn benches(c: &mut Criterion) {
    let groups = kv_benches::server_group_names(STORE, &["get", "put"]);
    let Some(url) = kv_benches::service_url(STORE, "KV_TEST_REDIS_URL", &groups) else {
        return;
    };
    let raw_url = with_db(&url);
    let procs = ServerProcs {
        comm: "redis-server",
        cmdline: port_of(&url).map(|p| format!(":{p}")),
    };
    let kv_url = format!("{raw_url}?namespace={NAMESPACE}");
    let rt = kv_benches::runtime();
    let w = Arc::new(Workload::standard());

    let connected = rt.block_on(async {
        let client = redis::Client::open(raw_url.as_str()).map_err(|e| e.to_string())?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| e.to_string())?;
        let store = RedisStore::connect(&kv_url)
            .await
            .map_err(|e| e.to_string())?;
        let dyn_store = kv::open(&kv_url).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((conn, store, dyn_store))
    });
    let (conn, store, dyn_store) = match connected {
        Ok(c) => c,
        Err(e) => {
            kv_benches::skip(
                STORE,
                &format!("cannot connect to KV_TEST_REDIS_URL: {e}"),
                &groups,
            );
            return;
        }
    };
    kv_benches::fill_async(&rt, &store, &w);
    let raw = Raw {
        conn,
        keys: Arc::new(
            w.keys
                .iter()
                .map(|k| store.redis_key(kv_benches::COLLECTION, k))
                .collect(),
        ),
        w: w.clone(),
        version: Arc::new(AtomicU64::new(1)),
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
        scan: None::<NoScan>,
    };
    kv_benches::server_groups(c, &rt, &bench, &ops);

    if let Err(e) = rt.block_on(store.destroy_opts(DestroyOptions::default())) {
        eprintln!("kv-benches: redis: cleaning up the namespace {NAMESPACE} failed: {e}");
    }
}

criterion_group! {
    name = redis_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(redis_benches);
