//! Memory store: the cost of kv's API over a bare `HashMap` behind the same kind of lock,
//! through static dispatch (`MemoryStore: KvStore`) and through the dyn handle (`kv::Store`).
//!
//! The memory store's futures are ready on first poll, so they are polled once with
//! `now_or_never` — no runtime in the measurement, only the store and the dispatch.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::memory::MemoryStore;
use kv_core::{GetOptions, KvStore, PutOptions};

const N: usize = 10_000;
const VALUE_SIZE: usize = 100;

fn bench_get(c: &mut Criterion) {
    let keys = kv_benches::keys(N);
    let value = kv_benches::value(VALUE_SIZE);

    let map: RwLock<HashMap<String, Bytes>> =
        RwLock::new(keys.iter().map(|k| (k.clone(), value.clone())).collect());
    let store = MemoryStore::new();
    for k in &keys {
        store
            .put_opts("bench", k, value.clone(), PutOptions::default())
            .now_or_never()
            .unwrap()
            .unwrap();
    }
    let dyn_store: kv::Store = Arc::new(store.clone());

    let mut g = c.benchmark_group("memory_get");
    let mut i = 0;
    g.bench_function("baseline_hashmap_rwlock", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let v = map.read().unwrap().get(keys[i].as_str()).cloned();
            black_box(v)
        })
    });
    g.bench_function("kv_static", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let v = store
                .get_opts("bench", &keys[i], GetOptions::default())
                .now_or_never()
                .unwrap();
            black_box(v)
        })
    });
    g.bench_function("kv_dyn", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let v = dyn_store
                .get_opts("bench", &keys[i], GetOptions::default())
                .now_or_never()
                .unwrap();
            black_box(v)
        })
    });
    g.finish();
}

fn bench_put(c: &mut Criterion) {
    let keys = kv_benches::keys(N);
    let value = kv_benches::value(VALUE_SIZE);

    let map: RwLock<HashMap<String, Bytes>> = RwLock::new(HashMap::new());
    let store = MemoryStore::new();
    let dyn_store: kv::Store = Arc::new(MemoryStore::new());

    let mut g = c.benchmark_group("memory_put");
    let mut i = 0;
    g.bench_function("baseline_hashmap_rwlock", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            // Overwrites in place after the first round (no key allocation), as the store does.
            let mut m = map.write().unwrap();
            match m.get_mut(keys[i].as_str()) {
                Some(v) => *v = value.clone(),
                None => {
                    m.insert(keys[i].clone(), value.clone());
                }
            }
            black_box(&m);
        })
    });
    g.bench_function("kv_static", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let r = store
                .put_opts("bench", &keys[i], value.clone(), PutOptions::default())
                .now_or_never()
                .unwrap();
            black_box(r)
        })
    });
    g.bench_function("kv_dyn", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let r = dyn_store
                .put_opts("bench", &keys[i], value.clone(), PutOptions::default())
                .now_or_never()
                .unwrap();
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_get, bench_put);
criterion_main!(benches);
