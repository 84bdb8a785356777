//! etcd: kv's `EtcdStore` (one etcd-client `Client`, a tonic channel cloned per call) against
//! raw etcd-client sending the identical requests over a client of its own with the store's
//! connection options.
//!
//! Needs the test server (`cargo xtask services up etcd`; `KV_TEST_ETCD_URL`) and the
//! `etcd` feature of kv-benches (etcd-client's build needs protoc); without the server the
//! benchmarks are skipped with a message. Everything lives under the prefix `kvbench/`, and
//! the benchmark deletes it at the end.
//!
//! Both sides store the same bytes under the same keys: the etcd key is
//! `kvbench/bench/key-000042` (`kv::etcd::format::entry_key`, computed once per key for the
//! baseline; the store builds it on every call), the value the kv envelope with `created_at`
//! (`kv_core::envelope`), decoded and checked for expiry on every read; the entry's version
//! is the key's `mod_revision`. The requests are the store's:
//! - get: `Range` of the key; put: `Put` (no lease: no TTL);
//! - `etcd_get_many_100` / `etcd_put_many_100`: one `Txn` of 100 `Range` / `Put` operations
//!   (a batch write is atomic, as in the store; each value encoded on its own);
//! - `etcd_scan_10000`: `Range` over the collection's key prefix in pages of about 1 000 keys
//!   (gRPC clients refuse answers over 4 MiB by default, so one request cannot carry the
//!   10 MiB), each page starting after the last key of the one before, as the store pages.
//!
//! - `etcd_{get,put,get_many_100,put_many_100,scan_10000}`: one operation at a time
//!   (latency), driven by `block_on` on a multi-thread runtime.
//! - `etcd_{get,put}_tasks_{1,64}`: 1 and 64 concurrent tasks sharing each side's channel.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use etcd_client::{
    Client, ConnectOptions, GetOptions as EGet, KeyValue, Txn, TxnOp, TxnOpResponse,
};
use kv::etcd::format;
use kv::etcd::{EtcdConfig, EtcdStore};
use kv_benches::{BATCH, COLLECTION, Op, SerialOps, ServerBench, ServerProcs, Workload};
use kv_core::envelope::{self, Meta};
use kv_core::{DestroyOptions, KvStore, Timestamp};

const STORE: &str = "etcd";
const PREFIX: &str = "kvbench";
/// The name of the raw client's benchmarks.
const BASELINE: &str = "baseline_etcd_client";
/// Keys per scan request.
const SCAN_PAGE: i64 = 1000;

/// The raw client, the etcd key of every workload key, and the collection's key range.
#[derive(Clone)]
struct Raw {
    client: Client,
    keys: Arc<Vec<Vec<u8>>>,
    range: Arc<(Vec<u8>, Vec<u8>)>,
    w: Arc<Workload>,
}

impl Raw {
    /// The value of a write now, as the store encodes it.
    fn encode(&self) -> Vec<u8> {
        let meta = Meta {
            expires_at: None,
            created_at: Some(Timestamp::now()),
            version: None,
        };
        envelope::encode(&meta, &self.w.value)
    }
}

/// Decodes a stored value into a live entry's parts (meta, value, version), as the store does.
fn decode(kv: &KeyValue, now: Timestamp) -> Option<(Meta, Bytes, i64)> {
    let (meta, value) =
        envelope::decode(Bytes::copy_from_slice(kv.value())).expect("a kv envelope");
    (!meta.is_expired_at(now)).then_some((meta, value, kv.mod_revision()))
}

#[derive(Clone)]
struct RawGet(Raw);

impl Op for RawGet {
    async fn run(&self, i: usize) {
        let k = self.0.keys[self.0.w.index(i)].clone();
        let mut r = self.0.client.clone().get(k, None).await.expect("Range");
        let kv = r.take_kvs().into_iter().next().expect("Range: key missing");
        let entry = decode(&kv, Timestamp::now());
        assert!(entry.is_some(), "Range: entry expired");
        black_box(entry);
    }
}

#[derive(Clone)]
struct RawPut(Raw);

impl Op for RawPut {
    async fn run(&self, i: usize) {
        let k = self.0.keys[self.0.w.index(i)].clone();
        let r = self
            .0
            .client
            .clone()
            .put(k, self.0.encode(), None)
            .await
            .expect("Put");
        black_box(r);
    }
}

#[derive(Clone)]
struct RawGetMany(Raw);

impl Op for RawGetMany {
    async fn run(&self, i: usize) {
        let ops: Vec<TxnOp> = self
            .0
            .w
            .batch(i)
            .map(|k| TxnOp::get(self.0.keys[k].clone(), None))
            .collect();
        let r = self
            .0
            .client
            .clone()
            .txn(Txn::new().and_then(ops))
            .await
            .expect("Txn of Range");
        let now = Timestamp::now();
        let out: Vec<_> = r
            .op_responses()
            .iter()
            .map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().and_then(|kv| decode(kv, now)),
                _ => None,
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
        let ops: Vec<TxnOp> = self
            .0
            .w
            .batch(i)
            .map(|k| TxnOp::put(self.0.keys[k].clone(), self.0.encode(), None))
            .collect();
        self.0
            .client
            .clone()
            .txn(Txn::new().and_then(ops))
            .await
            .expect("Txn of Put");
    }
}

#[derive(Clone)]
struct RawScan(Raw);

impl Op for RawScan {
    async fn run(&self, _i: usize) {
        let (first, end) = &*self.0.range;
        let cut = first.len();
        let mut client = self.0.client.clone();
        let mut start = first.clone();
        let now = Timestamp::now();
        let mut items = Vec::with_capacity(self.0.w.keys.len());
        loop {
            let opts = EGet::new().with_range(end.clone()).with_limit(SCAN_PAGE);
            let mut r = client.get(start.clone(), Some(opts)).await.expect("Range");
            let more = r.more();
            let kvs = r.take_kvs();
            for kv in &kvs {
                let key = std::str::from_utf8(&kv.key()[cut..]).expect("a UTF-8 key");
                if let Some(e) = decode(kv, now) {
                    items.push((key.to_owned(), e));
                }
            }
            match kvs.last() {
                Some(last) if more => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
        assert_eq!(items.len(), self.0.w.keys.len(), "scan: entries read");
        black_box(items);
    }
}

fn benches(c: &mut Criterion) {
    let mut groups = kv_benches::server_group_names(STORE, &["get", "put"]);
    groups.push(kv_benches::scan_group_name(STORE));
    let Some(url) = kv_benches::service_url(STORE, "KV_TEST_ETCD_URL", &groups) else {
        return;
    };
    let base = url.split('?').next().unwrap_or(&url);
    let kv_url = format!("{base}?prefix={PREFIX}");
    let rt = kv_benches::runtime();
    let w = Arc::new(Workload::standard());
    let procs = ServerProcs {
        comm: "etcd",
        cmdline: kv_benches::url_port(&url).map(|p| format!("127.0.0.1:{p}")),
    };

    let connected = rt.block_on(async {
        let cfg = EtcdConfig::from_url(&kv_url).map_err(|e| e.to_string())?;
        let store = EtcdStore::connect_with(cfg.clone())
            .await
            .map_err(|e| e.to_string())?;
        let dyn_store = kv::open(&kv_url).await.map_err(|e| e.to_string())?;
        // The store's connection options.
        let opts = ConnectOptions::new()
            .with_timeout(cfg.timeout)
            .with_connect_timeout(cfg.timeout)
            .with_keep_alive(Duration::from_secs(5), cfg.timeout);
        let endpoints: Vec<String> = cfg
            .endpoints
            .iter()
            .map(|e| format!("http://{e}"))
            .collect();
        let client = Client::connect(endpoints, Some(opts))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((store, dyn_store, client))
    });
    let (store, dyn_store, client) = match connected {
        Ok(c) => c,
        Err(e) => {
            kv_benches::skip(
                STORE,
                &format!("cannot connect to KV_TEST_ETCD_URL: {e}"),
                &groups,
            );
            return;
        }
    };
    kv_benches::fill_async(&rt, &store, &w);
    let first = format::entry_key(PREFIX, COLLECTION, "");
    let end = format::prefix_end(&first);
    let raw = Raw {
        client,
        keys: Arc::new(
            w.keys
                .iter()
                .map(|k| format::entry_key(PREFIX, COLLECTION, k))
                .collect(),
        ),
        range: Arc::new((first, end)),
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
        eprintln!("kv-benches: etcd: deleting the prefix {PREFIX}/ failed: {e}");
    }
}

criterion_group! {
    name = etcd_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(etcd_benches);
