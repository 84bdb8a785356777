//! JSON file: kv's `JsonFileStore` against `serde_json` and `std::fs` keeping the store's one
//! JSON document.
//!
//! The baseline does what the store does per operation (`kv_store_jsonfile::format`): every
//! entry lives in memory, in a `BTreeMap` per collection; a get or a scan reads that map (the
//! scan in key order); every write changes the map and then rewrites the whole file — the
//! pretty-printed document (`format`, `format_version`, `next_version`, then every collection
//! and entry in key order: the value verbatim when it is JSON text and in `value_base64`
//! otherwise, RFC 3339 times, the version) written to `PATH.tmp`, `fsync`ed, renamed over the
//! file, and the directory `fsync`ed. A batch is one change and one rewrite.
//!
//! Both sides use the store's default durability (`immediate`: the file on disk after every
//! write), so a write costs the encoding of all 10 000 entries (about 14 MB, the values in
//! base64 since the workload's text is not JSON) plus two `fsync`s, and the write groups take
//! fewer samples. What differs, and counts as kv's cost in the ratio: the store makes each
//! change on a copy of the whole map and swaps it in only once the file is written (so a
//! failed write leaves nothing behind), holds its locks, copies keys and values into the API's
//! types and adds error context and dispatch. Each contender has its own file holding the same
//! 10 000 entries of 1 KiB.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::filetree::format::base64_encode;
use kv::jsonfile::JsonFileStore;
use kv::jsonfile::format::{FORMAT_NAME, FORMAT_VERSION};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

fn rfc3339_opt<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn base64<S: Serializer>(b: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&base64_encode(b)),
        None => s.serialize_none(),
    }
}

/// An entry, serialized as the store writes it.
#[derive(Serialize)]
struct Item {
    /// The value when it is a JSON text without surrounding whitespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Box<RawValue>>,
    /// Any other value (base64 in the file).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "base64")]
    value_base64: Option<Bytes>,
    #[serde(serialize_with = "rfc3339")]
    created_at: Timestamp,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    expires_at: Option<Timestamp>,
    version: u64,
}

impl Item {
    fn new(value: &Bytes, now: Timestamp, version: u64) -> Item {
        // The store's rule: verbatim only if the whole text is one JSON value.
        let json = std::str::from_utf8(value)
            .ok()
            .filter(|text| {
                serde_json::from_str::<&RawValue>(text)
                    .is_ok_and(|raw| raw.get().len() == text.len())
            })
            .and_then(|text| RawValue::from_string(text.to_owned()).ok());
        let value_base64 = json.is_none().then(|| value.clone());
        Item {
            value: json,
            value_base64,
            created_at: now,
            expires_at: None,
            version,
        }
    }

    fn value(&self) -> Bytes {
        match (&self.value, &self.value_base64) {
            (Some(raw), _) => Bytes::copy_from_slice(raw.get().as_bytes()),
            (None, Some(b)) => b.clone(),
            (None, None) => Bytes::new(),
        }
    }
}

/// The whole document.
#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    format_version: u64,
    next_version: u64,
    collections: &'a BTreeMap<String, BTreeMap<String, Item>>,
}

/// The store's data in memory and its file.
struct JsonFile {
    path: PathBuf,
    tmp: PathBuf,
    next_version: u64,
    collections: BTreeMap<String, BTreeMap<String, Item>>,
}

impl JsonFile {
    fn open(path: &Path) -> JsonFile {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        JsonFile {
            path: path.to_owned(),
            tmp: tmp.into(),
            next_version: 1,
            collections: BTreeMap::new(),
        }
    }

    /// Rewrites the file: encode, `PATH.tmp`, `fsync`, rename, `fsync` of the directory.
    fn persist(&self) {
        let doc = Document {
            format: FORMAT_NAME,
            format_version: FORMAT_VERSION,
            next_version: self.next_version,
            collections: &self.collections,
        };
        let mut bytes = Vec::new();
        serde_json::to_writer_pretty(&mut bytes, &doc).expect("encode the file");
        bytes.push(b'\n');
        let _ = std::fs::remove_file(&self.tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.tmp)
            .expect("create the temporary file");
        file.write_all(&bytes).expect("write");
        file.sync_all().expect("sync");
        drop(file);
        std::fs::rename(&self.tmp, &self.path).expect("rename");
        let dir = self.path.parent().expect("a directory");
        File::open(dir)
            .and_then(|d| d.sync_all())
            .expect("sync the directory");
    }

    fn write(&mut self, keys: &[&str], value: &Bytes) {
        let now = Timestamp::now();
        let entries = self.collections.entry(COLLECTION.to_owned()).or_default();
        for key in keys {
            entries.insert((*key).to_owned(), Item::new(value, now, self.next_version));
            self.next_version += 1;
        }
        self.persist();
    }

    fn get(&self, key: &str, now: Timestamp) -> Option<(Bytes, Timestamp, u64)> {
        let it = self.collections.get(COLLECTION)?.get(key)?;
        if it.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        Some((it.value(), it.created_at, it.version))
    }
}

impl Side for JsonFile {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = JsonFile::get(self, w.key(i), Timestamp::now());
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
            .map(|k| JsonFile::get(self, k, now))
            .collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        self.write(&w.batch_keys(i), &w.value);
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now();
        let Some(entries) = self.collections.get(COLLECTION) else {
            return 0;
        };
        let items: Vec<(String, Bytes, Timestamp, u64)> = entries
            .iter()
            .filter(|(_, it)| it.expires_at.is_none_or(|e| e > now))
            .map(|(k, it)| (k.clone(), it.value(), it.created_at, it.version))
            .collect();
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = JsonFile::open(&dir.path().join("raw.json"));
    for chunk in w.keys.chunks(1000) {
        let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
        raw.write(&keys, &w.value);
    }

    let store = JsonFileStore::open_path(dir.path().join("kv.json")).expect("open the store");
    let url = format!("jsonfile://{}", dir.path().join("dyn.json").display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the jsonfile store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "jsonfile",
        &w,
        &mut [
            ("baseline_serde_json", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        true,
    );
}

criterion_group! {
    name = jsonfile_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(jsonfile_benches);
