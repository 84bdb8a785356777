//! LMDB: kv's `LmdbStore` against heed writing the store's own layout.
//!
//! The baseline does exactly the store's engine work (`kv_store_lmdb::format`): entries live
//! in the named database `kv:entries` under the composite key (u32 length of the collection,
//! collection, key), each value the kv envelope (`kv_core::envelope`) followed by the bytes;
//! a put is one write transaction that takes a version from `kv:meta` and stores the entry, a
//! get one read transaction that decodes the envelope, checks expiry and copies the value
//! out; batches and the scan use one transaction each. The ratio is what kv's API costs
//! around the same LMDB calls: owned key copies, the map-resize gate and retry loop, the
//! blocking-work wrapper, error context and dispatch.
//!
//! LMDB has no non-durable mode in the store, so both sides `fsync` every write transaction
//! (LMDB's default): the write groups are dominated by the disk. Each contender has its own
//! environment directory holding the same 10 000 entries of 1 KiB.

use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, WithoutTls};
use kv::lmdb::LmdbStore;
use kv::lmdb::format::{collection_header, composite};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;
use kv_core::envelope::{self, Meta};

type Db = Database<'static, Raw, Raw>;

const NEXT_VERSION: &[u8] = b"next_version";

/// heed on its own environment, in the store's layout.
struct Heed {
    env: Env<WithoutTls>,
    entries: Db,
    meta: Db,
    /// The LMDB key of each workload key, computed once.
    keys: Vec<Vec<u8>>,
    header: Vec<u8>,
}

impl Heed {
    fn open(dir: &Path, w: &Workload) -> Heed {
        std::fs::create_dir_all(dir).expect("create the environment directory");
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(1 << 30).max_dbs(4);
        // SAFETY: the memory map is only undefined behaviour if `data.mdb` is changed other than
        // through LMDB; this directory is private to the benchmark and opened once.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }.expect("open the environment");
        let txn = env.write_txn().expect("write txn");
        let (entries, meta) = env
            .create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
                let entries = opener.create_database::<Raw, Raw>(txn, Some("kv:entries"))?;
                let meta = opener.create_database::<Raw, Raw>(txn, Some("kv:meta"))?;
                meta.put(txn, NEXT_VERSION, &1u64.to_le_bytes())?;
                Ok(CommitOrAbort::<_, ()>::Commit((entries, meta)))
            })
            .expect("create the databases")
            .unwrap_commit();
        Heed {
            env,
            entries,
            meta,
            keys: w.keys.iter().map(|k| composite(COLLECTION, k)).collect(),
            header: collection_header(COLLECTION),
        }
    }

    fn write(&self, indices: impl ExactSizeIterator<Item = usize>, value: &[u8]) {
        let now = Timestamp::now();
        let mut txn = self.env.write_txn().expect("write txn");
        let first = self
            .meta
            .get(&txn, NEXT_VERSION)
            .expect("meta")
            .and_then(|raw| raw.try_into().ok())
            .map(u64::from_le_bytes)
            .expect("next_version");
        let n = indices.len() as u64;
        self.meta
            .put(&mut txn, NEXT_VERSION, &(first + n).to_le_bytes())
            .expect("meta");
        let mut raw = Vec::new();
        for (version, k) in (first..).zip(indices) {
            let meta = Meta {
                expires_at: None,
                created_at: Some(now),
                version: Some(version),
            };
            raw.clear();
            envelope::encode_into(&meta, value, &mut raw);
            self.entries
                .put(&mut txn, &self.keys[k], &raw)
                .expect("put");
        }
        txn.commit().expect("commit");
    }

    /// Decodes a stored envelope: the entry's metadata and a copy of its value, if live.
    fn read(stored: &[u8], now: Timestamp) -> Option<(Meta, Bytes)> {
        let (meta, header) = envelope::decode_meta(stored).expect("an envelope");
        if meta.is_expired_at(now) {
            return None;
        }
        Some((meta, Bytes::copy_from_slice(&stored[header..])))
    }
}

impl Side for Heed {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let now = Timestamp::now();
        let txn = self.env.read_txn().expect("read txn");
        let e = self
            .entries
            .get(&txn, &self.keys[w.index(i)])
            .expect("get")
            .and_then(|v| Self::read(v, now));
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(std::iter::once(w.index(i)), &w.value);
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = Timestamp::now();
        let txn = self.env.read_txn().expect("read txn");
        let out: Vec<_> = w
            .batch(i)
            .map(|k| {
                self.entries
                    .get(&txn, &self.keys[k])
                    .expect("get")
                    .and_then(|v| Self::read(v, now))
            })
            .collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        let batch: Vec<usize> = w.batch(i).collect();
        self.write(batch.into_iter(), &w.value);
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now();
        let txn = self.env.read_txn().expect("read txn");
        let mut items: Vec<(String, (Meta, Bytes))> = Vec::new();
        for next in self
            .entries
            .prefix_iter(&txn, &self.header)
            .expect("prefix iter")
        {
            let (k, v) = next.expect("entry");
            let key = std::str::from_utf8(&k[self.header.len()..]).expect("a UTF-8 key");
            if let Some(e) = Self::read(v, now) {
                items.push((key.to_owned(), e));
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

    let mut raw = Heed::open(&dir.path().join("raw"), &w);
    let all: Vec<usize> = (0..w.keys.len()).collect();
    for chunk in all.chunks(1000) {
        raw.write(chunk.iter().copied(), &w.value);
    }

    let store = LmdbStore::open_path(dir.path().join("kv")).expect("open the lmdb store");
    let url = format!("lmdb://{}", dir.path().join("dyn").display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the lmdb store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "lmdb",
        &w,
        &mut [
            ("baseline_heed", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        true,
    );
}

criterion_group! {
    name = lmdb_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(lmdb_benches);
