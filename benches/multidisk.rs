//! Multidisk: kv's `MultiDiskStore` against redb with one file per collection, in the store's
//! layout.
//!
//! The baseline does the store's engine work (`kv_store_multidisk::format`): the collection
//! lives in its own redb file (`c_bench.redb`, whose `kv:meta` table names the collection),
//! its entries in the table `kv:data` under the bare key, each value the kv envelope
//! (`kv_core::envelope`) followed by the bytes, written in place with `insert_reserve`.
//! Versions come from a store-wide counter whose reserve lives in `_kv_meta.redb` and is
//! raised by 1 024 in a durable commit before versions beyond it are handed out. A put is one
//! write transaction, a get one read transaction that decodes the envelope, checks expiry and
//! copies the value out; batches and the scan use one transaction each.
//!
//! The ratio is what kv's API costs around the same redb calls: the lock around the store's
//! state, the file-name escaping and the lookup of the collection's database in the cache of
//! open files (on every operation), the owned copies of keys and values, the blocking-work
//! wrapper, error context and dispatch. Both sides write with `durability=none` (redb commits
//! in memory; the reserve's commits stay durable); each contender has its own directory
//! holding the same 10 000 entries of 1 KiB.

use std::ops::RangeFull;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::multidisk::format::{
    DATA_TABLE, META_COLLECTION_KEY, META_FORMAT_KEY, META_NEXT_VERSION_KEY, META_TABLE_NAME,
    VERSION_BLOCK, file_name,
};
use kv::multidisk::{Durability, MultiDiskStore};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;
use kv_core::envelope::{self, Meta};
use redb::{Database, ReadableDatabase, TableDefinition};

/// The metadata table of the store's metadata file.
const STORE_META: TableDefinition<&str, u64> = TableDefinition::new(META_TABLE_NAME);

/// The metadata table of a collection file.
const FILE_META: TableDefinition<&str, &str> = TableDefinition::new(META_TABLE_NAME);

/// redb on its own directory, one file for the collection, in the store's layout.
struct Redb {
    meta: Database,
    db: Database,
    next: u64,
    reserved: u64,
}

impl Redb {
    fn open(dir: &Path) -> Redb {
        std::fs::create_dir_all(dir).expect("create the directory");
        let meta = Database::create(dir.join("_kv_meta.redb")).expect("the metadata file");
        let txn = meta.begin_write().expect("write txn");
        {
            let mut t = txn.open_table(STORE_META).expect("meta table");
            t.insert(META_FORMAT_KEY, 1).expect("insert");
            t.insert(META_NEXT_VERSION_KEY, 1).expect("insert");
        }
        txn.commit().expect("commit");
        let db = Database::create(dir.join(file_name(COLLECTION))).expect("the collection file");
        let txn = db.begin_write().expect("write txn");
        {
            let mut t = txn.open_table(FILE_META).expect("meta table");
            t.insert(META_FORMAT_KEY, "1").expect("insert");
            t.insert(META_COLLECTION_KEY, COLLECTION).expect("insert");
            txn.open_table(DATA_TABLE).expect("data table");
        }
        txn.commit().expect("commit");
        Redb {
            meta,
            db,
            next: 1,
            reserved: 1,
        }
    }

    /// `n` consecutive versions; raises the reserve durably first when they would reach it.
    fn take_versions(&mut self, n: u64) -> u64 {
        let first = self.next;
        let end = first + n;
        if end > self.reserved {
            let raise = end + VERSION_BLOCK;
            let txn = self.meta.begin_write().expect("write txn");
            {
                let mut t = txn.open_table(STORE_META).expect("meta table");
                t.insert(META_NEXT_VERSION_KEY, raise).expect("insert");
            }
            txn.commit().expect("commit");
            self.reserved = raise;
        }
        self.next = end;
        first
    }

    fn write(&mut self, keys: &[&str], value: &[u8]) {
        let now = Timestamp::now();
        let first = self.take_versions(keys.len() as u64);
        let mut txn = self.db.begin_write().expect("write txn");
        txn.set_durability(redb::Durability::None)
            .expect("durability");
        {
            let mut table = txn.open_table(DATA_TABLE).expect("data table");
            for (version, key) in (first..).zip(keys) {
                let meta = Meta {
                    expires_at: None,
                    created_at: Some(now),
                    version: Some(version),
                };
                let mut slot = table
                    .insert_reserve(*key, meta.header_len() + value.len())
                    .expect("insert");
                let mut buf: &mut [u8] = slot.as_mut();
                envelope::encode_into(&meta, value, &mut buf);
            }
        }
        txn.commit().expect("commit");
    }
}

/// Decodes a stored envelope: the entry's metadata and a copy of its value, if live.
fn read(raw: &[u8], now: Timestamp) -> Option<(Meta, Bytes)> {
    let (meta, header) = envelope::decode_meta(raw).expect("an envelope");
    if meta.is_expired_at(now) {
        return None;
    }
    Some((meta, Bytes::copy_from_slice(&raw[header..])))
}

impl Side for Redb {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let now = Timestamp::now();
        let txn = self.db.begin_read().expect("read txn");
        let table = txn.open_table(DATA_TABLE).expect("data table");
        let e = table
            .get(w.key(i))
            .expect("get")
            .and_then(|v| read(v.value(), now));
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(&[w.key(i)], &w.value);
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = Timestamp::now();
        let txn = self.db.begin_read().expect("read txn");
        let table = txn.open_table(DATA_TABLE).expect("data table");
        let out: Vec<_> = w
            .batch_keys(i)
            .into_iter()
            .map(|k| {
                table
                    .get(k)
                    .expect("get")
                    .and_then(|v| read(v.value(), now))
            })
            .collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        self.write(&w.batch_keys(i), &w.value);
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now();
        let txn = self.db.begin_read().expect("read txn");
        let table = txn.open_table(DATA_TABLE).expect("data table");
        let mut items: Vec<(String, (Meta, Bytes))> = Vec::new();
        for item in table.range::<&str>(RangeFull).expect("range") {
            let (k, v) = item.expect("entry");
            if let Some(e) = read(v.value(), now) {
                items.push((k.value().to_owned(), e));
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

    let mut raw = Redb::open(&dir.path().join("raw"));
    for chunk in w.keys.chunks(1000) {
        let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
        raw.write(&keys, &w.value);
    }

    let store = MultiDiskStore::builder(dir.path().join("kv"))
        .durability(Durability::None)
        .open()
        .expect("open the multidisk store");
    let url = format!(
        "multidisk://{}?durability=none",
        dir.path().join("dyn").display()
    );
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the multidisk store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "multidisk",
        &w,
        &mut [
            ("baseline_redb", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        false,
    );
}

criterion_group! {
    name = multidisk_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(multidisk_benches);
