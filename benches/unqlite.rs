//! UnQLite: kv's `UnqliteStore` against UnQLite's C API writing the store's own layout.
//!
//! The baseline does the store's engine work (`kv_store_unqlite::format`, the layout of every
//! engine-backed store): keys are `0x01`, the u32 length of the collection, the collection and
//! the key; values the kv envelope (`kv_core::envelope`) followed by the bytes; versions come
//! from a counter whose reserve is written to the meta key every 1 024 versions
//! ([`EngineVersions`]), in the same transaction. Both sides call the C library through
//! `kv_store_unqlite::raw` (the unqlite crate's own wrapper opens databases with undefined
//! behaviour that breaks release builds). A write is one UnQLite transaction (`begin`, the
//! stores, `commit`); a get is one `unqlite_kv_fetch` (size, then bytes) and decodes the
//! envelope. UnQLite's store is a hash table, so a scan walks every record with a cursor,
//! keeps the collection's live ones and sorts them by key.
//!
//! What differs: the store's scan (kv-engine's, for an unordered engine) collects the page's
//! live keys first, then fetches each value again by key (one more fetch per entry), where the baseline keeps the value
//! the cursor already read; the store runs every operation on its own worker thread, so the
//! ratio also includes one hand-off to that thread and back per call, besides the API's
//! copies, key-length checks, error context and dispatch.
//!
//! UnQLite syncs its journal and file on every commit and the store has no setting to change
//! that, so both sides wait for the disk on every write (the write groups take fewer
//! samples). Each contender has its own database file holding the same 10 000 entries of
//! 1 KiB.

use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::unqlite::UnqliteStore;
use kv::unqlite::format::{META_NEXT_VERSION, collection_end, collection_prefix, data_key};
use kv::unqlite::raw::{Db, Error};
use kv_benches::{COLLECTION, EngineVersions, KvSide, Side, Workload};
use kv_core::Timestamp;
use kv_core::envelope::{self, Meta};

/// UnQLite's C API on its own database file, in the store's layout.
struct Unq {
    db: Db,
    keys: Vec<Vec<u8>>,
    prefix: Vec<u8>,
    end: Vec<u8>,
    versions: EngineVersions,
}

impl Unq {
    fn open(path: &Path, w: &Workload) -> Unq {
        let db = Db::open(path.to_str().expect("a UTF-8 path")).expect("open the database");
        let prefix = collection_prefix(COLLECTION);
        Unq {
            db,
            keys: w.keys.iter().map(|k| data_key(COLLECTION, k)).collect(),
            end: collection_end(&prefix),
            prefix,
            versions: EngineVersions::new(),
        }
    }

    fn write(&mut self, indices: impl ExactSizeIterator<Item = usize>, value: &[u8]) {
        let now = Timestamp::now();
        let (first, reserve) = self.versions.allocate(indices.len() as u64);
        self.db.begin().expect("begin");
        if let Some(reserve) = reserve {
            self.db
                .store(META_NEXT_VERSION, &reserve.to_le_bytes())
                .expect("store the reserve");
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
            self.db.store(&self.keys[k], &raw).expect("store");
        }
        self.db.commit().expect("commit");
    }

    fn read(&mut self, k: usize, now: Timestamp) -> Option<(Meta, Bytes)> {
        let raw = self.db.fetch(&self.keys[k]).expect("fetch")?;
        let (meta, value) = envelope::decode(Bytes::from(raw)).expect("an envelope");
        (!meta.is_expired_at(now)).then_some((meta, value))
    }
}

impl Side for Unq {
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
        let (prefix, end) = (self.prefix.as_slice(), self.end.as_slice());
        let prefix_len = prefix.len();
        self.db
            .walk::<Error>(
                |k| k >= prefix && k < end,
                |k, v| {
                    let key = String::from_utf8(k[prefix_len..].to_vec()).expect("UTF-8");
                    let (meta, value) =
                        envelope::decode(Bytes::copy_from_slice(v)).expect("an envelope");
                    if !meta.is_expired_at(now) {
                        items.push((key, meta, value));
                    }
                    Ok(true)
                },
            )
            .expect("walk");
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = Unq::open(&dir.path().join("raw.db"), &w);
    let all: Vec<usize> = (0..w.keys.len()).collect();
    for chunk in all.chunks(1000) {
        raw.write(chunk.iter().copied(), &w.value);
    }

    let store = UnqliteStore::open_path(dir.path().join("kv.db")).expect("open the unqlite store");
    let url = format!("unqlite://{}", dir.path().join("dyn.db").display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the unqlite store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "unqlite",
        &w,
        &mut [
            ("baseline_unqlite", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        true,
    );
}

criterion_group! {
    name = unqlite_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(unqlite_benches);
