//! Disk store: the cost of kv's API over raw redb doing the same work with the same
//! durability — one read transaction per get, one write transaction per put.
//!
//! The baseline stores the bare value bytes; kv stores its native envelope around them (the
//! expiry and version a bare redb value does not have), so the ratio includes that encoding.
//! Both run on the bench thread: the disk store runs its futures inline outside a tokio
//! runtime, so they are polled once with `now_or_never`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::disk::{DiskStore, Durability};
use kv_core::{GetOptions, KvStore, PutOptions};
use redb::{Database, ReadableDatabase, TableDefinition};

const N: usize = 10_000;
const VALUE_SIZE: usize = 100;
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("bench");

fn raw_db(dir: &tempfile::TempDir) -> Database {
    Database::create(dir.path().join("raw.redb")).unwrap()
}

fn raw_put(db: &Database, durability: redb::Durability, key: &str, value: &[u8]) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        let mut t = txn.open_table(TABLE).unwrap();
        t.insert(key, value).unwrap();
    }
    txn.commit().unwrap();
}

fn kv_store(dir: &tempfile::TempDir, durability: Durability) -> DiskStore {
    DiskStore::builder(dir.path().join("kv.redb"))
        .durability(durability)
        .open()
        .unwrap()
}

fn bench_get(c: &mut Criterion) {
    let keys = kv_benches::keys(N);
    let value = kv_benches::value(VALUE_SIZE);
    let dir = tempfile::tempdir().unwrap();

    let db = raw_db(&dir);
    {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(redb::Durability::None).unwrap();
        {
            let mut t = txn.open_table(TABLE).unwrap();
            for k in &keys {
                t.insert(k.as_str(), value.as_ref()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let store = kv_store(&dir, Durability::None);
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|k| (k.as_str(), value.clone())).collect();
    store
        .put_many_opts("bench", &entries, Default::default())
        .now_or_never()
        .unwrap()
        .unwrap();

    let mut g = c.benchmark_group("disk_get");
    let mut i = 0;
    g.bench_function("baseline_redb", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(TABLE).unwrap();
            let v = t
                .get(keys[i].as_str())
                .unwrap()
                .map(|g| Bytes::copy_from_slice(g.value()));
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
    g.finish();
}

fn bench_put(c: &mut Criterion, name: &str, durability: Durability, raw: redb::Durability) {
    let keys = kv_benches::keys(N);
    let value = kv_benches::value(VALUE_SIZE);
    let dir = tempfile::tempdir().unwrap();
    let db = raw_db(&dir);
    let store = kv_store(&dir, durability);

    let mut g = c.benchmark_group(name);
    if durability == Durability::Immediate {
        // Each put waits for the disk: fewer, longer samples.
        g.sample_size(20);
    }
    let mut i = 0;
    g.bench_function("baseline_redb", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            raw_put(&db, raw, &keys[i], &value);
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
    g.finish();
}

fn bench_put_none(c: &mut Criterion) {
    bench_put(
        c,
        "disk_put_durability_none",
        Durability::None,
        redb::Durability::None,
    );
}

fn bench_put_immediate(c: &mut Criterion) {
    bench_put(
        c,
        "disk_put_durability_immediate",
        Durability::Immediate,
        redb::Durability::Immediate,
    );
}

criterion_group!(benches, bench_get, bench_put_none, bench_put_immediate);
criterion_main!(benches);
