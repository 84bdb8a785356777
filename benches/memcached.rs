//! Memcached: kv's `MemcachedStore` (a pool of connections per server, keys spread over the
//! servers by a consistent-hash ring) against raw async-memcached sending the identical meta
//! commands over a pool of the same shape.
//!
//! Needs the test servers (`cargo xtask services up memcached`; `KV_TEST_MEMCACHED_URL`, two
//! servers); without them the benchmarks are skipped with a message. Everything lives under
//! the prefix `kvbench`, and the benchmark deletes its entries at the end.
//!
//! Both sides store the same bytes under the same item keys on the same server: the item key
//! is `kvbench:bench:key-000042` (`kv::memcached::format::item_key`) and the server the
//! store's ring picks for it (`MemcachedStore::server_of`), both computed once per key for the
//! baseline, as the Redis benchmark computes its keys once; the store derives them on every
//! call (escaping and one SHA-256 of the ring: kv's cost). The value is the kv envelope with
//! `created_at` (`format::encode`, as the store writes it), decoded and checked for expiry on
//! every read. The commands are the store's: `mg KEY v c` (value and CAS, the entry's
//! version); `ms KEY T0`; a batch is one pipelined `meta_get_multi` / `meta_set_multi` per
//! server, the servers in parallel. Each server has a pool of connections taken round-robin
//! behind a mutex, as in the store.
//!
//! Memcached cannot list its keys, and the store does not emulate a scan (it answers
//! `Unsupported`), so there is no scan group.
//!
//! - `memcached_{get,put,get_many_100,put_many_100}`: one operation at a time (latency),
//!   driven by `block_on` on a multi-thread runtime.
//! - `memcached_{get,put}_tasks_{1,64}`: 1 and 64 concurrent tasks on that runtime; both
//!   sides keep 64 connections per server (kv: `pool_size=64`).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_memcached::{Client, MetaProtocol};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::future::join_all;
use kv::memcached::format;
use kv::memcached::{MemcachedConfig, MemcachedStore};
use kv_benches::{
    BATCH, COLLECTION, NoScan, Op, SerialOps, ServerBench, ServerProcs, TASKS, Workload,
};
use kv_core::envelope::Meta;
use kv_core::{DeleteOptions, KvStore, Timestamp};
use tokio::sync::{Mutex, MutexGuard};

const STORE: &str = "memcached";
const PREFIX: &str = "kvbench";
/// The name of the raw client's benchmarks.
const BASELINE: &str = "baseline_async_memcached";
/// The flags of the store's writes: no native expiry (no TTL).
const SET_FLAGS: &[&str] = &["T0"];
/// The flags of the store's reads: the value and the CAS unique.
const GET_FLAGS: &[&str] = &["v", "c"];

/// One server's connections, taken round-robin.
struct Server {
    conns: Vec<Mutex<Client>>,
    next: AtomicUsize,
}

/// The raw pools and, per workload key, its item key and server.
#[derive(Clone)]
struct Raw {
    servers: Arc<Vec<Server>>,
    items: Arc<Vec<(String, usize)>>,
    w: Arc<Workload>,
}

impl Raw {
    async fn conn(&self, server: usize) -> MutexGuard<'_, Client> {
        let s = &self.servers[server];
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.conns.len();
        s.conns[i].lock().await
    }

    /// The item value of a write now, as the store encodes it.
    fn encode(&self) -> Vec<u8> {
        Self::encode_at(Timestamp::now(), &self.w.value)
    }

    fn encode_at(now: Timestamp, value: &[u8]) -> Vec<u8> {
        let meta = Meta {
            expires_at: None,
            created_at: Some(now),
            version: None,
        };
        format::encode(&meta, None, value)
    }
}

/// Decodes a hit into a live entry's parts (meta, value, CAS), as the store does.
fn decode(data: Option<Vec<u8>>, cas: Option<u64>, now: Timestamp) -> Option<(Meta, Bytes, u64)> {
    let raw = Bytes::from(data.unwrap_or_default());
    let (meta, value) = format::decode(raw, None).expect("a kv envelope")?;
    (!meta.is_expired_at(now)).then_some((meta, value, cas.unwrap_or(0)))
}

#[derive(Clone)]
struct RawGet(Raw);

impl Op for RawGet {
    async fn run(&self, i: usize) {
        let (ik, server) = &self.0.items[self.0.w.index(i)];
        let hit = self
            .0
            .conn(*server)
            .await
            .meta_get(ik, false, None, Some(GET_FLAGS))
            .await
            .expect("mg");
        let hit = hit.expect("mg: key missing");
        let entry = decode(hit.data, hit.cas, Timestamp::now());
        assert!(entry.is_some(), "mg: entry expired");
        black_box(entry);
    }
}

#[derive(Clone)]
struct RawPut(Raw);

impl Op for RawPut {
    async fn run(&self, i: usize) {
        let (ik, server) = &self.0.items[self.0.w.index(i)];
        let raw = self.0.encode();
        self.0
            .conn(*server)
            .await
            .meta_set(ik, &raw[..], false, None, Some(SET_FLAGS))
            .await
            .expect("ms");
    }
}

#[derive(Clone)]
struct RawGetMany(Raw);

impl Op for RawGetMany {
    async fn run(&self, i: usize) {
        let batch: Vec<usize> = self.0.w.batch(i).collect();
        let mut by_server: HashMap<usize, Vec<&str>> = HashMap::new();
        for &k in &batch {
            let (ik, server) = &self.0.items[k];
            by_server.entry(*server).or_default().push(ik);
        }
        let answers = join_all(by_server.into_iter().map(|(server, iks)| async move {
            let hits = self
                .0
                .conn(server)
                .await
                .meta_get_multi(&iks, Some(GET_FLAGS))
                .await
                .expect("mg pipeline");
            hits.into_iter()
                .filter_map(|m| Some((m.key?, (m.data, m.cas))))
                .collect::<Vec<_>>()
        }))
        .await;
        let mut hits: HashMap<Vec<u8>, _> = answers.into_iter().flatten().collect();
        // In the order asked, as the store returns them.
        let now = Timestamp::now();
        let out: Vec<_> = batch
            .iter()
            .map(|&k| {
                let (data, cas) = hits.remove(self.0.items[k].0.as_bytes())?;
                decode(data, cas, now)
            })
            .collect();
        assert_eq!(out.len(), BATCH);
        black_box(out);
    }
}

#[derive(Clone)]
struct RawPutMany(Raw);

impl Op for RawPutMany {
    async fn run(&self, i: usize) {
        // One `created_at` for the whole batch, as the store writes it; an envelope per
        // entry, as a caller whose entries hold different values must build.
        let now = Timestamp::now();
        let mut by_server: HashMap<usize, Vec<(&str, Vec<u8>)>> = HashMap::new();
        for k in self.0.w.batch(i) {
            let (ik, server) = &self.0.items[k];
            let raw = Raw::encode_at(now, &self.0.w.value);
            by_server.entry(*server).or_default().push((ik, raw));
        }
        join_all(by_server.into_iter().map(|(server, items)| async move {
            let items: Vec<(&str, &[u8])> = items.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            let refused = self
                .0
                .conn(server)
                .await
                .meta_set_multi(&items, Some(SET_FLAGS))
                .await
                .expect("ms pipeline");
            assert!(refused.is_empty(), "ms pipeline: items refused");
        }))
        .await;
    }
}

fn benches(c: &mut Criterion) {
    let groups = kv_benches::server_group_names(STORE, &["get", "put"]);
    let Some(url) = kv_benches::service_url(STORE, "KV_TEST_MEMCACHED_URL", &groups) else {
        return;
    };
    let max_tasks = TASKS.iter().copied().max().unwrap_or(1);
    let base = url.split('?').next().unwrap_or(&url);
    let kv_url = format!("{base}?prefix={PREFIX}&pool_size={max_tasks}");
    let rt = kv_benches::runtime();
    let w = Arc::new(Workload::standard());
    // Both test servers (their command lines differ only by port).
    let procs = ServerProcs {
        comm: "memcached",
        cmdline: None,
    };

    let connected = rt.block_on(async {
        let config = MemcachedConfig::from_url(&kv_url).map_err(|e| e.to_string())?;
        let store = MemcachedStore::connect_with(config.clone())
            .await
            .map_err(|e| e.to_string())?;
        let dyn_store = kv::open(&kv_url).await.map_err(|e| e.to_string())?;
        let mut servers = Vec::new();
        for addr in &config.servers {
            let mut conns = Vec::with_capacity(max_tasks);
            for _ in 0..max_tasks {
                let client = Client::new(format!("tcp://{addr}"))
                    .await
                    .map_err(|e| format!("{addr}: {e}"))?;
                conns.push(Mutex::new(client));
            }
            servers.push(Server {
                conns,
                next: AtomicUsize::new(0),
            });
        }
        Ok::<_, String>((config, store, dyn_store, servers))
    });
    let (config, store, dyn_store, servers) = match connected {
        Ok(c) => c,
        Err(e) => {
            kv_benches::skip(
                STORE,
                &format!("cannot connect to KV_TEST_MEMCACHED_URL: {e}"),
                &groups,
            );
            return;
        }
    };
    kv_benches::fill_async(&rt, &store, &w);
    let items = w
        .keys
        .iter()
        .map(|k| {
            let (ik, hashed) = format::item_key(PREFIX, COLLECTION, k);
            assert!(!hashed, "the workload's item keys are short");
            let addr = store.server_of(COLLECTION, k);
            let server = config
                .servers
                .iter()
                .position(|s| s == addr)
                .expect("a server of the configuration");
            (ik, server)
        })
        .collect();
    let raw = Raw {
        servers: Arc::new(servers),
        items: Arc::new(items),
        w: w.clone(),
    };

    let bench = ServerBench {
        store: STORE,
        baseline: BASELINE,
        server: procs,
        kv_static: store.clone(),
        kv_dyn: dyn_store,
        w: w.clone(),
    };
    let ops = SerialOps {
        get: RawGet(raw.clone()),
        put: RawPut(raw.clone()),
        get_many: RawGetMany(raw.clone()),
        put_many: RawPutMany(raw.clone()),
        scan: None::<NoScan>,
    };
    kv_benches::server_groups(c, &rt, &bench, &ops);

    // The store cannot clear a collection (memcached cannot list keys): delete the keys.
    let keys: Vec<&str> = w.keys.iter().map(String::as_str).collect();
    if let Err(e) = rt.block_on(store.delete_many_opts(COLLECTION, &keys, DeleteOptions::default()))
    {
        eprintln!("kv-benches: memcached: deleting the benchmark's entries failed: {e}");
    }
}

criterion_group! {
    name = memcached_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(memcached_benches);
