//! NATS JetStream KV: kv's `NatsStore` (one connection, one bucket per collection) against
//! raw async-nats on one connection of its own, using the store's bucket through the
//! `jetstream::kv::Store` API.
//!
//! Needs the test server (`cargo xtask services up nats`; `KV_TEST_NATS_URL`); without it the
//! benchmarks are skipped with a message. Everything lives in the bucket `kvbench_cbench` (the
//! store's name for the collection `bench` under the namespace `kvbench`,
//! `kv::nats::format::bucket_name`), created by the store and deleted at the end.
//!
//! Both sides store the same bytes under the same NATS keys: the key is
//! `kv::nats::format::encode_key` of the kv key (computed once per key for the baseline; the
//! store escapes it on every call), the value the kv envelope with `created_at`
//! (`format::encode`), decoded and checked for expiry on every read; the entry's version is
//! the NATS revision. Reads are `kv::Store::entry` (the stream's last message of the key's
//! subject), writes one JetStream publish awaiting its acknowledgement (`kv::Store::put`; the
//! store publishes with an empty header map).
//!
//! JetStream KV has no batch operations, and the store emulates them; the baseline does the
//! same with the raw client:
//! - `nats_get_many_100`: 100 concurrent `entry` requests, pipelined on the connection.
//! - `nats_put_many_100`: 100 publishes sent, then their 100 acknowledgements awaited.
//! - `nats_scan_10000`: the store's scan: the bucket's key listing (an ordered consumer that
//!   delivers the last message of every subject, headers only), the keys decoded and sorted,
//!   then the entries read by concurrent `entry` requests, 256 at a time.
//!
//! - `nats_{get,put,get_many_100,put_many_100,scan_10000}`: one operation at a time
//!   (latency), driven by `block_on` on a multi-thread runtime.
//! - `nats_{get,put}_tasks_{1,64}`: 1 and 64 concurrent tasks sharing each side's connection.

use std::future::IntoFuture;
use std::hint::black_box;
use std::sync::Arc;

use async_nats::jetstream::{self, kv as nats_kv};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::TryStreamExt;
use futures_util::future::join_all;
use kv::nats::NatsStore;
use kv::nats::format;
use kv_benches::{BATCH, COLLECTION, Op, SerialOps, ServerBench, ServerProcs, Workload};
use kv_core::envelope::Meta;
use kv_core::{DestroyOptions, KvStore, Timestamp};

const STORE: &str = "nats";
const NAMESPACE: &str = "kvbench";
/// The name of the raw client's benchmarks.
const BASELINE: &str = "baseline_async_nats";
/// Entries the store's scan reads concurrently.
const SCAN_CHUNK: usize = 256;

/// The raw connection's JetStream context, the bucket, and the NATS key of every workload key.
#[derive(Clone)]
struct Raw {
    js: jetstream::Context,
    bucket: nats_kv::Store,
    nkeys: Arc<Vec<String>>,
    w: Arc<Workload>,
}

impl Raw {
    /// The value of a write now, as the store encodes it.
    fn encode(&self) -> Bytes {
        Self::encode_at(Timestamp::now(), &self.w.value)
    }

    fn encode_at(now: Timestamp, value: &[u8]) -> Bytes {
        let meta = Meta {
            expires_at: None,
            created_at: Some(now),
            version: None,
        };
        format::encode(&meta, None, value)
    }

    /// The live entry of a NATS key (meta, value, revision), as the store reads it.
    async fn entry(&self, nkey: &str, now: Timestamp) -> Option<(Meta, Bytes, u64)> {
        let e = self.bucket.entry(nkey).await.expect("NATS KV entry")?;
        if e.operation != nats_kv::Operation::Put {
            return None;
        }
        let (meta, _, value) = format::decode(e.value, false).expect("a kv envelope");
        (!meta.is_expired_at(now)).then_some((meta, value, e.revision))
    }
}

#[derive(Clone)]
struct RawGet(Raw);

impl Op for RawGet {
    async fn run(&self, i: usize) {
        let nkey = &self.0.nkeys[self.0.w.index(i)];
        let entry = self.0.entry(nkey, Timestamp::now()).await;
        assert!(entry.is_some(), "NATS KV entry: key missing");
        black_box(entry);
    }
}

#[derive(Clone)]
struct RawPut(Raw);

impl Op for RawPut {
    async fn run(&self, i: usize) {
        let nkey = &self.0.nkeys[self.0.w.index(i)];
        let rev = self
            .0
            .bucket
            .put(nkey, self.0.encode())
            .await
            .expect("NATS KV put");
        black_box(rev);
    }
}

#[derive(Clone)]
struct RawGetMany(Raw);

impl Op for RawGetMany {
    async fn run(&self, i: usize) {
        let now = Timestamp::now();
        let found = join_all(
            self.0
                .w
                .batch(i)
                .map(|k| self.0.entry(&self.0.nkeys[k], now)),
        )
        .await;
        assert_eq!(found.len(), BATCH);
        black_box(found);
    }
}

#[derive(Clone)]
struct RawPutMany(Raw);

impl Op for RawPutMany {
    async fn run(&self, i: usize) {
        // One `created_at` for the whole batch, as the store writes it; an envelope per
        // entry, as a caller whose entries hold different values must build.
        let now = Timestamp::now();
        let mut acks = Vec::with_capacity(BATCH);
        for k in self.0.w.batch(i) {
            let subject = format!("{}{}", self.0.bucket.prefix, self.0.nkeys[k]);
            acks.push(
                self.0
                    .js
                    .publish(subject, Raw::encode_at(now, &self.0.w.value))
                    .await
                    .expect("NATS publish"),
            );
        }
        for ack in join_all(acks.into_iter().map(IntoFuture::into_future)).await {
            ack.expect("NATS publish ack");
        }
    }
}

#[derive(Clone)]
struct RawScan(Raw);

impl Op for RawScan {
    async fn run(&self, _i: usize) {
        let nkeys: Vec<String> = self
            .0
            .bucket
            .keys()
            .await
            .expect("NATS KV keys")
            .try_collect()
            .await
            .expect("NATS KV keys");
        let mut keys: Vec<(String, String)> = nkeys
            .into_iter()
            .filter_map(|nk| Some((format::decode_key(&nk)?, nk)))
            .collect();
        keys.sort_unstable();
        let now = Timestamp::now();
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(SCAN_CHUNK) {
            let entries = join_all(chunk.iter().map(|(_, nk)| self.0.entry(nk, now))).await;
            for ((k, _), e) in chunk.iter().zip(entries) {
                if let Some(e) = e {
                    items.push((k.clone(), e));
                }
            }
        }
        assert_eq!(items.len(), self.0.w.keys.len(), "scan: entries read");
        black_box(items);
    }
}

fn benches(c: &mut Criterion) {
    let mut groups = kv_benches::server_group_names(STORE, &["get", "put"]);
    groups.push(kv_benches::scan_group_name(STORE));
    let Some(url) = kv_benches::service_url(STORE, "KV_TEST_NATS_URL", &groups) else {
        return;
    };
    let base = url.split('?').next().unwrap_or(&url).to_owned();
    let kv_url = format!("{base}?namespace={NAMESPACE}");
    let rt = kv_benches::runtime();
    let w = Arc::new(Workload::standard());
    let procs = ServerProcs {
        comm: "nats-server",
        cmdline: kv_benches::url_port(&url).map(str::to_owned),
    };

    let connected = rt.block_on(async {
        let store = NatsStore::connect(&kv_url)
            .await
            .map_err(|e| e.to_string())?;
        let dyn_store = kv::open(&kv_url).await.map_err(|e| e.to_string())?;
        let client = async_nats::connect(base.as_str())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((store, dyn_store, jetstream::new(client)))
    });
    let (store, dyn_store, js) = match connected {
        Ok(c) => c,
        Err(e) => {
            kv_benches::skip(
                STORE,
                &format!("cannot connect to KV_TEST_NATS_URL: {e}"),
                &groups,
            );
            return;
        }
    };
    // kv first: it creates the bucket the baseline opens.
    kv_benches::fill_async(&rt, &store, &w);
    let bucket = rt
        .block_on(js.get_key_value(store.bucket_of(COLLECTION)))
        .expect("the store's bucket");
    let nkeys = w
        .keys
        .iter()
        .map(|k| {
            let (nkey, hashed) = format::encode_key(k);
            assert!(!hashed, "the workload's NATS keys are short");
            nkey
        })
        .collect();
    let raw = Raw {
        js,
        bucket,
        nkeys: Arc::new(nkeys),
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
        eprintln!("kv-benches: nats: deleting the bucket of namespace {NAMESPACE} failed: {e}");
    }
}

criterion_group! {
    name = nats_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(nats_benches);
