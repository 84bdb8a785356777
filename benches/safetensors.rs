//! Safetensors: kv's read-only `SafetensorsStore` against the safetensors crate reading the
//! same file.
//!
//! The file holds the workload's 10 000 entries of 1 KiB, written once through the store in
//! read-write mode: each entry a `U8` tensor named `bench/<key>`, its creation time, version
//! and kind in the `kv.entries` record of `__metadata__`. Both sides then open it as the
//! read-only store does: parse the header once (the baseline with
//! `safetensors::SafeTensors::read_metadata`, plus `kv.entries` with serde_json) into a
//! `BTreeMap` from key to the tensor's data range and record; a get looks the key up, checks
//! expiry and reads the tensor's bytes with one positioned read (no `mmap`); `get_many` does
//! that per key; the scan walks the map in key order and reads every tensor. The ratio is
//! what kv's API costs around the same reads: the lock around the state, the owned copies, the
//! name resolution, error context and dispatch.
//!
//! Only reads are measured. The store opens model files read-only by default, where every
//! write is an error. Its read-write mode (`?mode=rw`) keeps the whole file in memory: with
//! the default durability (`flush`) a put is an insert into that in-memory map, with nothing
//! of the safetensors crate to compare it with, and with `durability=immediate` every put
//! re-serializes and rewrites the whole 10 MB file — neither says anything about the cost of
//! kv's API over the file format, so the write groups are left out.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::safetensors::SafetensorsStore;
use kv::safetensors::format::META_ENTRIES;
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::{KvStore, Timestamp};
use safetensors::SafeTensors;
use serde::Deserialize;

/// An entry's record in `kv.entries`.
#[derive(Deserialize)]
struct Record {
    /// `raw` (the value is the tensor's bytes) or `tensor`.
    t: String,
    /// Created at, µs since the Unix epoch.
    c: i64,
    /// Expires at, µs.
    e: Option<i64>,
    /// Version.
    v: u64,
}

/// Where a tensor's bytes are, and its record.
struct Slot {
    offset: u64,
    len: usize,
    record: Record,
}

/// The safetensors crate's header of the file, and positioned reads of its data.
struct Raw {
    file: File,
    entries: BTreeMap<String, Slot>,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let bytes = std::fs::read(path).expect("read the file");
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).expect("a safetensors file");
        let data_start = 8 + header_len as u64;
        let mut records: BTreeMap<String, Record> = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_ENTRIES))
            .map(|json| serde_json::from_str(json).expect("kv.entries"))
            .unwrap_or_default();
        let prefix = format!("{COLLECTION}/");
        let entries = metadata
            .tensors()
            .into_iter()
            .filter_map(|(name, info)| {
                let key = name.strip_prefix(&prefix)?.to_owned();
                let record = records.remove(&name).expect("a record per tensor");
                let (start, end) = info.data_offsets;
                let slot = Slot {
                    offset: data_start + start as u64,
                    len: end - start,
                    record,
                };
                Some((key, slot))
            })
            .collect();
        Raw {
            file: File::open(path).expect("open the file"),
            entries,
        }
    }

    fn read(&self, slot: &Slot) -> (Bytes, i64, Option<i64>, u64) {
        let mut buf = vec![0u8; slot.len];
        self.file
            .read_exact_at(&mut buf, slot.offset)
            .expect("read a tensor");
        let r = &slot.record;
        assert_eq!(r.t, "raw", "the workload's values are raw bytes");
        (Bytes::from(buf), r.c, r.e, r.v)
    }

    fn get(&self, key: &str, now: i64) -> Option<(Bytes, i64, Option<i64>, u64)> {
        let slot = self.entries.get(key)?;
        if slot.record.e.is_some_and(|e| e <= now) {
            return None;
        }
        Some(self.read(slot))
    }
}

impl Side for Raw {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = Raw::get(self, w.key(i), Timestamp::now().as_unix_micros());
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, _: &Workload, _: usize) {
        unreachable!("read-only: embedded_groups never writes (Side::writes)")
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = Timestamp::now().as_unix_micros();
        let out: Vec<_> = w
            .batch_keys(i)
            .into_iter()
            .map(|k| Raw::get(self, k, now))
            .collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, _: &Workload, _: usize) {
        unreachable!("read-only: embedded_groups never writes (Side::writes)")
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now().as_unix_micros();
        let items: Vec<(String, _)> = self
            .entries
            .iter()
            .filter(|(_, s)| s.record.e.is_none_or(|e| e > now))
            .map(|(k, s)| (k.clone(), self.read(s)))
            .collect();
        let n = items.len();
        std::hint::black_box(items);
        n
    }

    fn writes(&self) -> bool {
        false
    }
}

/// A kv contender on the read-only store.
struct ReadOnly<S>(KvSide<S>);

impl<S: KvStore> Side for ReadOnly<S> {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        self.0.get(w, i)
    }

    fn put(&mut self, _: &Workload, _: usize) {
        unreachable!("read-only: embedded_groups never writes (Side::writes)")
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        self.0.get_many(w, i);
    }

    fn put_many(&mut self, _: &Workload, _: usize) {
        unreachable!("read-only: embedded_groups never writes (Side::writes)")
    }

    fn scan(&mut self, w: &Workload) -> usize {
        self.0.scan(w)
    }

    fn batches(&self) -> bool {
        self.0.batches()
    }

    fn writes(&self) -> bool {
        false
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.safetensors");

    // Write the file once, through the store in read-write mode.
    let writer = SafetensorsStore::open_read_write(&path).expect("open the file read-write");
    KvSide::new(writer.clone()).fill(&w);
    writer
        .close()
        .now_or_never()
        .expect("closing an embedded store completes inline")
        .expect("write the file");
    drop(writer);

    let mut raw = Raw::open(&path);
    let store = SafetensorsStore::open_read_only(&path).expect("open the file read-only");
    let url = format!("safetensors://{}", path.display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the safetensors store by URL");
    let mut kv_static = ReadOnly(KvSide::new(store.clone()));
    let mut kv_dyn = ReadOnly(KvSide::new(dyn_store));
    let mut kv_tokio = ReadOnly(KvSide::in_tokio(store));

    kv_benches::embedded_groups(
        c,
        "safetensors",
        &w,
        &mut [
            ("baseline_safetensors", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        false,
    );
}

criterion_group! {
    name = safetensors_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(safetensors_benches);
