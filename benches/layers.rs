//! Layers: what each layer adds per operation over the bare memory store, and what a stack of
//! layers costs composed statically (one concrete type) vs erased once behind the dyn handle.
//!
//! Every variant is measured on its own store, filled through the variant itself (so prefixes,
//! compression and encryption apply to what it reads back). The memory store's futures are
//! ready on first poll, so they are polled once with `now_or_never`: no runtime in the
//! measurement. Layers that need a Tokio runtime to run at all (timeout, rate limit, retry's
//! sleeps) are not in this file.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use futures_util::FutureExt;
use kv::layers::StoreLayerExt;
use kv::layers::circuit_breaker::CircuitBreakerLayer;
use kv::layers::compression::CompressionLayer;
use kv::layers::concurrency_limit::ConcurrencyLimitLayer;
use kv::layers::encryption::EncryptionLayer;
use kv::layers::metrics::MetricsLayer;
use kv::layers::prefix_keys::PrefixKeysLayer;
use kv::layers::statistics::StatisticsLayer;
use kv::layers::tracing_layer::TracingLayer;
use kv::layers::ttl_clamp::TtlClampLayer;
use kv::memory::MemoryStore;
use kv_core::{GetOptions, KvStore, PutOptions};

const N: usize = 10_000;
const VALUE_SIZE: usize = 100;

/// The stack measured as a whole: the layers a service typically runs in production.
macro_rules! stack {
    () => {
        MemoryStore::new()
            .with(TtlClampLayer::new().max(Duration::from_secs(3600)))
            .with(PrefixKeysLayer::new("app"))
            .with(StatisticsLayer::new())
            .with(TracingLayer::new())
    };
}

fn fill<S: KvStore>(store: &S, keys: &[String]) {
    let value = kv_benches::value(VALUE_SIZE);
    for k in keys {
        store
            .put_opts("bench", k, value.clone(), PutOptions::default())
            .now_or_never()
            .expect("the memory store is ready on first poll")
            .expect("fill");
    }
}

fn get<S: KvStore>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, store: S, keys: &[String]) {
    fill(&store, keys);
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let v = store
                .get_opts("bench", &keys[i], GetOptions::default())
                .now_or_never()
                .expect("ready on first poll");
            black_box(v)
        })
    });
}

fn put<S: KvStore>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, store: S, keys: &[String]) {
    fill(&store, keys);
    let value = kv_benches::value(VALUE_SIZE);
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let r = store
                .put_opts("bench", &keys[i], value.clone(), PutOptions::default())
                .now_or_never()
                .expect("ready on first poll");
            black_box(r)
        })
    });
}

macro_rules! variants {
    ($g:expr, $f:ident, $keys:expr) => {{
        let keys = $keys;
        $f($g, "baseline_memory", MemoryStore::new(), keys);
        $f(
            $g,
            "ttl_clamp",
            MemoryStore::new().with(TtlClampLayer::new().max(Duration::from_secs(3600))),
            keys,
        );
        $f(
            $g,
            "prefix_keys",
            MemoryStore::new().with(PrefixKeysLayer::new("app")),
            keys,
        );
        $f(
            $g,
            "statistics",
            MemoryStore::new().with(StatisticsLayer::new()),
            keys,
        );
        $f(
            $g,
            "tracing_no_subscriber",
            MemoryStore::new().with(TracingLayer::new()),
            keys,
        );
        $f(
            $g,
            "metrics_no_recorder",
            MemoryStore::new().with(MetricsLayer::new()),
            keys,
        );
        $f(
            $g,
            "circuit_breaker",
            MemoryStore::new().with(CircuitBreakerLayer::new()),
            keys,
        );
        $f(
            $g,
            "concurrency_limit",
            MemoryStore::new().with(ConcurrencyLimitLayer::new(64)),
            keys,
        );
        $f(
            $g,
            "compression_lz4",
            MemoryStore::new().with(CompressionLayer::new()),
            keys,
        );
        $f(
            $g,
            "encryption_xchacha",
            MemoryStore::new().with(EncryptionLayer::new(1, [7; 32])),
            keys,
        );
        $f($g, "stack4_static", stack!(), keys);
        let erased: kv::Store = Arc::new(stack!());
        $f($g, "stack4_dyn", erased, keys);
    }};
}

fn bench_get(c: &mut Criterion) {
    let keys = kv_benches::keys(N);
    let mut g = c.benchmark_group("layers_get");
    variants!(&mut g, get, &keys);
    g.finish();
}

fn bench_put(c: &mut Criterion) {
    let keys = kv_benches::keys(N);
    let mut g = c.benchmark_group("layers_put");
    variants!(&mut g, put, &keys);
    g.finish();
}

criterion_group!(benches, bench_get, bench_put);
criterion_main!(benches);
