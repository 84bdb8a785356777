//! LevelDB: kv's `LevelDbStore` against rusty-leveldb writing the store's own layout.
//!
//! The baseline does exactly the store's engine work (`kv_store_leveldb::format`, the layout
//! of every engine-backed store): keys are `0x01`, the u32 length of the collection, the
//! collection and the key; values the kv envelope (`kv_core::envelope`) followed by the bytes;
//! versions come from a counter whose reserve is written to the meta key every 1 024 versions,
//! in the same `WriteBatch`. A write is one `WriteBatch`; a get seeks an iterator to the key
//! and decodes the envelope (the store reads through the iterator, not `DB::get`, because
//! rusty-leveldb's table lookup can report a key deleted on a bloom-filter false positive —
//! a raw user needs the same workaround); the scan walks the collection's key range. The store
//! runs every operation on its own worker thread (rusty-leveldb's `DB` is used from one
//! thread), so the ratio includes one hand-off to that thread and back per call, besides the
//! copy of each value out of the engine, the API's owned keys, error context and dispatch.
//!
//! Both sides write with `sync=false` (`leveldb://...?sync=false`): writes stay in LevelDB's
//! buffer, so the write groups measure the engine rather than the disk. (With the default
//! `sync=true` the store also `fsync`s the newest log file, found by listing the directory,
//! after every write.) Each contender has its own database directory holding the same 10 000
//! entries of 1 KiB.

use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::leveldb::LevelDbStore;
use kv::leveldb::format::{META_NEXT_VERSION, collection_end, collection_prefix, data_key};
use kv::leveldb::rusty_leveldb::{DB, LdbIterator, Options, WriteBatch};
use kv_benches::{COLLECTION, EngineVersions, KvSide, Side, Workload};
use kv_core::Timestamp;
use kv_core::envelope::{self, Meta};

/// rusty-leveldb on its own database, in the store's layout and with its options.
struct Ldb {
    db: DB,
    keys: Vec<Vec<u8>>,
    prefix: Vec<u8>,
    end: Vec<u8>,
    versions: EngineVersions,
}

impl Ldb {
    fn open(dir: &Path, w: &Workload) -> Ldb {
        let opts = Options {
            create_if_missing: true,
            reuse_logs: false,
            reuse_manifest: false,
            ..Options::default()
        };
        let db = DB::open(dir, opts).expect("open leveldb");
        let prefix = collection_prefix(COLLECTION);
        Ldb {
            db,
            keys: w.keys.iter().map(|k| data_key(COLLECTION, k)).collect(),
            end: collection_end(&prefix),
            prefix,
            versions: EngineVersions::new(),
        }
    }

    fn write(&mut self, indices: impl ExactSizeIterator<Item = usize>, value: &[u8]) {
        let now = Timestamp::now();
        let mut batch = WriteBatch::default();
        let (first, reserve) = self.versions.allocate(indices.len() as u64);
        if let Some(reserve) = reserve {
            batch.put(META_NEXT_VERSION, &reserve.to_le_bytes());
        }
        let mut raw = Vec::new();
        for (version, k) in (first..).zip(indices) {
            let meta = Meta {
                expires_at: None,
                created_at: Some(now),
                version: Some(version),
            };
            raw.clear();
            envelope::encode_into(&meta, value, &mut raw);
            batch.put(&self.keys[k], &raw);
        }
        self.db.write(batch, false).expect("write batch");
    }

    /// The live entry under workload key `k`: a seek of a fresh iterator, as the store reads.
    fn read(&mut self, k: usize, now: Timestamp) -> Option<(Meta, Bytes)> {
        let key = &self.keys[k];
        let mut it = self.db.new_iter().expect("iterator");
        it.seek(key);
        if !it.valid() {
            return None;
        }
        let (found, v) = it.current()?;
        if found.as_ref() != key.as_slice() {
            return None;
        }
        let (meta, value) = envelope::decode(v).expect("an envelope");
        (!meta.is_expired_at(now)).then_some((meta, value))
    }
}

impl Side for Ldb {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = self.read(w.index(i), Timestamp::now());
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(std::iter::once(w.index(i)), &w.value);
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = Timestamp::now();
        let out: Vec<_> = w.batch(i).map(|k| self.read(k, now)).collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        let batch: Vec<usize> = w.batch(i).collect();
        self.write(batch.into_iter(), &w.value);
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now();
        let mut items: Vec<(String, Meta, Bytes)> = Vec::new();
        let mut it = self.db.new_iter().expect("iterator");
        it.seek(&self.prefix);
        while it.valid() {
            let Some((k, v)) = it.current() else { break };
            if k.as_ref() >= self.end.as_slice() {
                break;
            }
            let key = std::str::from_utf8(&k[self.prefix.len()..]).expect("a UTF-8 key");
            let (meta, header) = envelope::decode_meta(&v).expect("an envelope");
            if !meta.is_expired_at(now) {
                items.push((key.to_owned(), meta, v.slice(header..)));
            }
            if !it.advance() {
                break;
            }
        }
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = Ldb::open(&dir.path().join("raw"), &w);
    let all: Vec<usize> = (0..w.keys.len()).collect();
    for chunk in all.chunks(1000) {
        raw.write(chunk.iter().copied(), &w.value);
    }

    let store = LevelDbStore::builder(dir.path().join("kv"))
        .sync(false)
        .open()
        .expect("open the leveldb store");
    let url = format!("leveldb://{}?sync=false", dir.path().join("dyn").display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the leveldb store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "leveldb",
        &w,
        &mut [
            ("baseline_rusty_leveldb", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        false,
    );
}

criterion_group! {
    name = leveldb_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(leveldb_benches);
