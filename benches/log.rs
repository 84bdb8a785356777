//! Log: kv's `LogStore` against an append-only JSON-lines file with an in-memory index, written
//! with `serde_json` and `std::fs` in the store's format.
//!
//! The baseline does the store's work (`kv_store_log::format`): every write appends whole
//! lines — a JSON object per entry (`op`, collection, key, version, creation time, the value as
//! a JSON string when it is UTF-8) ending with the CRC-32 of the line — in one positioned
//! write; a batch is preceded by a `batch` marker line, so it is atomic on replay. The index
//! maps each collection to a `BTreeMap` from key to the offset, length, version and expiry of
//! its latest line; a get is one positioned read of that line, the CRC check, the JSON parse
//! and the check that the line is the entry's; the scan walks the collection's `BTreeMap` in
//! key order and reads every line so. When half of a file of at least 1 MiB is dead
//! (overwritten lines, batch markers), both sides compact it the same way: the live lines,
//! checked, copied to a new file behind a header, flushed and renamed over the log.
//!
//! The ratio is what kv's API costs around the same file work: the `RwLock` around the state,
//! the owned copies of keys and values, the TTL and put-mode checks, error context and
//! dispatch. Both sides write with `fsync=false` (lines reach the operating system at once,
//! the disk at the next compaction or close); with the store's default every write would wait
//! for the disk. Each contender has its own log holding the same 10 000 entries of 1 KiB.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::log::LogStore;
use kv::log::format::{FORMAT_VERSION, crc32};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;
use serde::{Deserialize, Serialize};

/// A line as the store writes it: its members in the store's order, absent ones left out.
#[derive(Default, Serialize)]
struct LineOut<'a> {
    op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ver: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ct: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a str>,
}

/// The kinds of line.
#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Op {
    Header,
    Put,
    Del,
    Clear,
    Batch,
}

/// A `put` line as the store reads it back.
#[derive(Deserialize)]
struct ValueIn {
    op: Op,
    c: Option<String>,
    k: Option<String>,
    ver: Option<u64>,
    ct: Option<i64>,
    exp: Option<i64>,
    v: Option<String>,
}

/// `"crc":"XXXXXXXX"}`
const CRC_SUFFIX_LEN: usize = 17;

/// Appends `line` with its CRC member and newline, as `kv_store_log::format` does.
fn encode_line(line: &LineOut<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    serde_json::to_writer(&mut *out, line).expect("encode a line");
    out.pop();
    out.push(b',');
    let crc = crc32(&out[start..]);
    out.extend_from_slice(format!("\"crc\":\"{crc:08x}\"}}\n").as_bytes());
}

/// Checks a line's CRC and parses it.
fn parse(line: &[u8]) -> ValueIn {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (body, suffix) = line.split_at(line.len() - CRC_SUFFIX_LEN);
    let hex = suffix
        .strip_prefix(b"\"crc\":\"")
        .and_then(|s| s.strip_suffix(b"\"}"))
        .expect("a checksum");
    let want = u32::from_str_radix(std::str::from_utf8(hex).expect("hex"), 16).expect("hex");
    assert_eq!(crc32(body), want, "checksum mismatch");
    serde_json::from_slice(line).expect("a log line")
}

#[derive(Clone, Copy)]
struct Slot {
    offset: u64,
    len: u64,
    version: u64,
    expires_at: Option<Timestamp>,
}

/// The log file and its index, in the store's format.
struct Log {
    path: PathBuf,
    file: File,
    len: u64,
    dead: u64,
    index: HashMap<String, BTreeMap<String, Slot>>,
    next_version: u64,
}

impl Log {
    fn open(path: &Path) -> Log {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("create the log");
        let mut header = Vec::new();
        encode_line(&Self::header(1), &mut header);
        file.write_all_at(&header, 0).expect("write the header");
        Log {
            path: path.to_owned(),
            file,
            len: header.len() as u64,
            dead: 0,
            index: HashMap::new(),
            next_version: 1,
        }
    }

    fn header(next_version: u64) -> LineOut<'static> {
        LineOut {
            op: "header",
            format: Some(FORMAT_VERSION),
            next_version: Some(next_version),
            ..LineOut::default()
        }
    }

    fn write(&mut self, keys: &[&str], value: &[u8]) {
        let now = Timestamp::now();
        let text = std::str::from_utf8(value).expect("a UTF-8 value");
        let mut buf = Vec::with_capacity(keys.len() * (value.len() + 128) + 64);
        if keys.len() > 1 {
            let marker = LineOut {
                op: "batch",
                n: Some(keys.len() as u64),
                ..LineOut::default()
            };
            encode_line(&marker, &mut buf);
            self.dead += buf.len() as u64;
        }
        let mut lines = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let start = buf.len();
            let version = self.next_version + i as u64;
            let line = LineOut {
                op: "put",
                c: Some(COLLECTION),
                k: Some(key),
                ver: Some(version),
                ct: Some(now.as_unix_micros()),
                v: Some(text),
                ..LineOut::default()
            };
            encode_line(&line, &mut buf);
            lines.push((start as u64, (buf.len() - start) as u64, version));
        }
        let offset = self.len;
        self.file.write_all_at(&buf, offset).expect("append");
        self.len += buf.len() as u64;
        self.next_version += keys.len() as u64;
        for (key, (start, len, version)) in keys.iter().zip(lines) {
            let slot = Slot {
                offset: offset + start,
                len,
                version,
                expires_at: None,
            };
            let map = match self.index.get_mut(COLLECTION) {
                Some(m) => m,
                None => self.index.entry(COLLECTION.to_owned()).or_default(),
            };
            if let Some(old) = map.insert((*key).to_owned(), slot) {
                self.dead += old.len;
            }
        }
        self.maybe_compact();
    }

    /// The store's policy: compact once half of a file of at least 1 MiB is dead.
    fn maybe_compact(&mut self) {
        if self.len < 1 << 20 || (self.dead as f64) < 0.5 * self.len as f64 {
            return;
        }
        let tmp = self.path.with_extension("log.compact");
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .expect("create the compacted log");
        let mut w = BufWriter::with_capacity(1 << 16, &out);
        let mut header = Vec::new();
        encode_line(&Self::header(self.next_version), &mut header);
        w.write_all(&header).expect("write");
        let mut pos = header.len() as u64;
        let mut offsets = Vec::new();
        for map in self.index.values() {
            for slot in map.values() {
                let buf = self.read_line(slot);
                parse(&buf);
                w.write_all(&buf).expect("write");
                offsets.push(pos);
                pos += slot.len;
            }
        }
        w.flush().expect("flush");
        drop(w);
        out.sync_all().expect("sync");
        std::fs::rename(&tmp, &self.path).expect("rename");
        self.file = out;
        self.len = pos;
        self.dead = 0;
        let mut it = offsets.into_iter();
        for map in self.index.values_mut() {
            for slot in map.values_mut() {
                slot.offset = it.next().expect("an offset per entry");
            }
        }
    }

    fn read_line(&self, slot: &Slot) -> Vec<u8> {
        let mut buf = vec![0u8; slot.len as usize];
        self.file
            .read_exact_at(&mut buf, slot.offset)
            .expect("read a line");
        buf
    }

    /// The entry of a slot: its line, checked and parsed.
    fn read_entry(&self, key: &str, slot: &Slot) -> (Bytes, Option<i64>, Option<i64>, u64) {
        let line = parse(&self.read_line(slot));
        assert!(line.op == Op::Put && line.c.as_deref() == Some(COLLECTION));
        assert_eq!(line.k.as_deref(), Some(key));
        let value = Bytes::from(line.v.expect("a text value").into_bytes());
        (value, line.ct, line.exp, line.ver.unwrap_or(slot.version))
    }

    fn get(&self, key: &str, now: Timestamp) -> Option<(Bytes, Option<i64>, Option<i64>, u64)> {
        let slot = self.index.get(COLLECTION)?.get(key)?;
        if slot.expires_at.is_some_and(|at| at <= now) {
            return None;
        }
        Some(self.read_entry(key, slot))
    }
}

impl Side for Log {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = Log::get(self, w.key(i), Timestamp::now());
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(&[w.key(i)], &w.value);
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = Timestamp::now();
        let out: Vec<_> = w
            .batch_keys(i)
            .into_iter()
            .map(|k| Log::get(self, k, now))
            .collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        self.write(&w.batch_keys(i), &w.value);
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now();
        let Some(map) = self.index.get(COLLECTION) else {
            return 0;
        };
        let items: Vec<(String, _)> = map
            .iter()
            .filter(|(_, s)| s.expires_at.is_none_or(|at| at > now))
            .map(|(k, s)| (k.clone(), self.read_entry(k, s)))
            .collect();
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = Log::open(&dir.path().join("raw.log"));
    for chunk in w.keys.chunks(1000) {
        let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
        raw.write(&keys, &w.value);
    }

    let store = LogStore::builder(dir.path().join("kv.log"))
        .fsync(false)
        .open()
        .expect("open the log store");
    let url = format!("log://{}?fsync=false", dir.path().join("dyn.log").display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the log store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "log",
        &w,
        &mut [
            ("baseline_json_lines", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        false,
    );
}

criterion_group! {
    name = log_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(log_benches);
