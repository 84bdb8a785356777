//! RocksDB: kv's `RocksDbStore` against the `rocksdb` crate writing the store's own layout.
//!
//! The baseline does exactly the store's engine work (`kv_store_rocksdb::format`): keys are
//! `0x01`, the u32 length of the collection, the collection and the key; values the kv
//! envelope (`kv_core::envelope`) followed by the bytes; versions come from a counter whose
//! reserve is written to the meta key every 1 024 versions, in the same `WriteBatch`; the same
//! compaction filter drops expired entries. A get decodes the envelope and checks expiry, a
//! batch write is one `WriteBatch`, the scan walks the collection's key range with a raw
//! iterator. The store runs every operation on its own worker thread (RocksDB handles are
//! used from one thread), so the ratio includes one hand-off to that thread and back per call,
//! besides the API's copies, error context and dispatch.
//!
//! Both sides write without `fsync` (`sync=false`). Each contender has its own database
//! directory holding the same 10 000 entries of 1 KiB.
//!
//! RocksDB links the system library (Debian's librocksdb-dev): this benchmark is compiled only
//! with the `rocksdb` feature of kv-benches, which `cargo xtask bench` turns on when the library
//! is installed; otherwise it prints why it is skipped.

#[cfg(feature = "rocksdb")]
mod bench {
    use std::path::Path;

    use bytes::Bytes;
    use criterion::{Criterion, criterion_group};
    use futures_util::FutureExt;
    use kv::rocksdb::RocksDbStore;
    use kv::rocksdb::format::{
        DATA_TAG, META_NEXT_VERSION, VERSION_BLOCK, collection_end, collection_prefix, data_key,
    };
    use kv::rocksdb::rocksdb::compaction_filter::Decision;
    use kv::rocksdb::rocksdb::{DB, Options, WriteBatch, WriteOptions};
    use kv_benches::{COLLECTION, KvSide, Side, Workload};
    use kv_core::Timestamp;
    use kv_core::envelope::{self, Meta};

    /// The store's compaction filter: drops data entries whose envelope says they expired.
    fn drop_expired(_level: u32, key: &[u8], value: &[u8]) -> Decision {
        let expired = key.first() == Some(&DATA_TAG)
            && envelope::decode_meta(value).is_ok_and(|(m, _)| m.is_expired_at(Timestamp::now()));
        if expired {
            Decision::Remove
        } else {
            Decision::Keep
        }
    }

    /// The rocksdb crate on its own database, in the store's layout.
    struct Rocks {
        db: DB,
        write_opts: WriteOptions,
        keys: Vec<Vec<u8>>,
        prefix: Vec<u8>,
        end: Vec<u8>,
        next_version: u64,
        reserved: u64,
    }

    impl Rocks {
        fn open(dir: &Path, w: &Workload) -> Rocks {
            let mut opts = Options::default();
            opts.create_if_missing(true);
            opts.set_compaction_filter("kv-drop-expired", drop_expired);
            let db = DB::open(&opts, dir).expect("open rocksdb");
            let mut write_opts = WriteOptions::default();
            write_opts.set_sync(false);
            let prefix = collection_prefix(COLLECTION);
            Rocks {
                db,
                write_opts,
                keys: w.keys.iter().map(|k| data_key(COLLECTION, k)).collect(),
                end: collection_end(&prefix),
                prefix,
                next_version: 1,
                reserved: 0,
            }
        }

        fn write(&mut self, indices: impl ExactSizeIterator<Item = usize>, value: &[u8]) {
            let now = Timestamp::now();
            let mut batch = WriteBatch::default();
            let first = self.next_version;
            let end = first + indices.len() as u64;
            if end > self.reserved {
                self.reserved = end + VERSION_BLOCK;
                batch.put(META_NEXT_VERSION, self.reserved.to_le_bytes());
            }
            self.next_version = end;
            for (version, k) in (first..).zip(indices) {
                let meta = Meta {
                    expires_at: None,
                    created_at: Some(now),
                    version: Some(version),
                };
                batch.put(&self.keys[k], envelope::encode(&meta, value));
            }
            self.db
                .write_opt(batch, &self.write_opts)
                .expect("write batch");
        }

        fn read(&self, k: usize, now: Timestamp) -> Option<(Meta, Bytes)> {
            let raw = self.db.get(&self.keys[k]).expect("get")?;
            let (meta, value) = envelope::decode(Bytes::from(raw)).expect("an envelope");
            (!meta.is_expired_at(now)).then_some((meta, value))
        }
    }

    impl Side for Rocks {
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
            let mut it = self.db.raw_iterator();
            it.seek(&self.prefix);
            while it.valid() {
                let (Some(k), Some(v)) = (it.key(), it.value()) else {
                    break;
                };
                if k >= self.end.as_slice() {
                    break;
                }
                let key = std::str::from_utf8(&k[self.prefix.len()..]).expect("a UTF-8 key");
                let (meta, header) = envelope::decode_meta(v).expect("an envelope");
                if !meta.is_expired_at(now) {
                    items.push((key.to_owned(), meta, Bytes::copy_from_slice(&v[header..])));
                }
                it.next();
            }
            it.status().expect("iterator");
            let n = items.len();
            std::hint::black_box(items);
            n
        }
    }

    fn benches(c: &mut Criterion) {
        let w = Workload::standard();
        let dir = tempfile::tempdir().expect("a temporary directory");

        let mut raw = Rocks::open(&dir.path().join("raw"), &w);
        let all: Vec<usize> = (0..w.keys.len()).collect();
        for chunk in all.chunks(1000) {
            raw.write(chunk.iter().copied(), &w.value);
        }

        let store = RocksDbStore::builder(dir.path().join("kv"))
            .sync(false)
            .open()
            .expect("open the rocksdb store");
        let url = format!("rocksdb://{}?sync=false", dir.path().join("dyn").display());
        let dyn_store = kv::open(&url)
            .now_or_never()
            .expect("kv::open of an embedded store completes inline")
            .expect("open the rocksdb store by URL");
        let mut kv_static = KvSide::new(store.clone());
        kv_static.fill(&w);
        let mut kv_dyn = KvSide::new(dyn_store);
        kv_dyn.fill(&w);
        let mut kv_tokio = KvSide::in_tokio(store);

        kv_benches::embedded_groups(
            c,
            "rocksdb",
            &w,
            &mut [
                ("baseline_rocksdb", &mut raw),
                ("kv_static", &mut kv_static),
                ("kv_dyn", &mut kv_dyn),
                ("kv_static_in_tokio", &mut kv_tokio),
            ],
            false,
        );
    }

    criterion_group! {
        name = rocksdb_benches;
        config = kv_benches::config();
        targets = benches
    }
}

#[cfg(feature = "rocksdb")]
criterion::criterion_main!(bench::rocksdb_benches);

#[cfg(not(feature = "rocksdb"))]
fn main() {
    kv_benches::skip(
        "rocksdb",
        "kv-benches was built without its `rocksdb` feature (it needs Debian's librocksdb-dev; \
         `cargo xtask bench` turns it on when the library is installed)",
        &kv_benches::embedded_group_names("rocksdb"),
    );
}
