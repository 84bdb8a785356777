//! File tree: kv's `FileTreeStore` against `std::fs` writing the store's own files.
//!
//! The baseline keeps the store's layout and encoding (`kv_store_filetree::format`): one
//! directory per collection, one pretty-printed JSON document per entry (`<key>.json`, the
//! value verbatim when it is JSON and in `value_base64` otherwise, RFC 3339 times, the
//! version), written atomically (a temporary file renamed over the entry), versions from a
//! counter whose reserve is written to `.kv-filetree.json` (atomically too) every 1 024
//! versions. A get reads and decodes the entry's file; `get_many` does that for each key;
//! `put_many` writes the files one after another; the scan lists the collection's directory,
//! reads and decodes every entry file and sorts the entries by key.
//!
//! What differs, and so counts as kv's cost in the ratio: the store takes the tree's lock
//! file (`flock`) around every write (several processes may share a tree), re-reads the
//! counter file before raising the reserve, and guards every file it touches against
//! symbolic links planted in the tree (`symlink_metadata` of the directory and the file, and
//! on Linux a `readlink` of `/proc/self/fd/N` after opening), and checks that a document sits
//! where its collection and key say; the scan first decodes every file name and picks the page
//! from the names, then reads the files. Plus the API's copies, error context and dispatch.
//!
//! Both sides write with `durability=none` (atomic renames, no `fsync`): with the store's
//! default every write waits for the disk twice (file and directory). Each contender has its
//! own directory holding the same 10 000 entries of 1 KiB (text that is not JSON, so stored
//! as `value_base64`).

use std::fs;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::filetree::format::{
    self, Document, ENTRY_EXT, STATE_FILE, TEMP_PREFIX, VERSION_BLOCK, decode_document,
    encode_document,
};
use kv::filetree::{Durability, FileTreeStore};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;

/// Writes `dir/name` atomically, as the store does: a temporary file (`temp` numbers them)
/// renamed over it.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], temp: &mut u64) {
    let tmp = dir.join(format!("{TEMP_PREFIX}{}-{temp}", std::process::id()));
    *temp += 1;
    fs::write(&tmp, bytes).expect("write the temporary file");
    fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// `std::fs` on its own directory, in the store's layout.
struct Files {
    root: PathBuf,
    dir: PathBuf,
    /// The file name of each workload key, computed once.
    names: Vec<String>,
    next: u64,
    reserved: u64,
    temp: u64,
}

impl Files {
    fn open(root: &Path, w: &Workload) -> Files {
        let dir = format::collection_dir(root, COLLECTION);
        fs::create_dir_all(&dir).expect("create the collection directory");
        Files {
            root: root.to_owned(),
            dir,
            names: w.keys.iter().map(|k| format::entry_file_name(k)).collect(),
            next: 1,
            reserved: 1,
            temp: 0,
        }
    }

    fn version(&mut self) -> u64 {
        if self.next >= self.reserved {
            self.reserved = self.next + VERSION_BLOCK;
            let mut state = serde_json::to_vec_pretty(&serde_json::json!({
                "format": format::FORMAT_VERSION,
                "next_version": self.reserved,
            }))
            .expect("state");
            state.push(b'\n');
            write_atomic(&self.root, STATE_FILE, &state, &mut self.temp);
        }
        self.next += 1;
        self.next - 1
    }

    fn write(&mut self, w: &Workload, indices: impl Iterator<Item = usize>) {
        let now = Timestamp::now();
        fs::create_dir_all(&self.dir).expect("the collection directory");
        for k in indices {
            let version = self.version();
            let doc = encode_document(COLLECTION, &w.keys[k], &w.value, now, None, version);
            write_atomic(&self.dir, &self.names[k], &doc, &mut self.temp);
        }
    }

    fn read(&self, k: usize, now: Timestamp) -> Option<Document> {
        let bytes = match fs::read(self.dir.join(&self.names[k])) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("read: {e}"),
        };
        let doc = decode_document(&bytes).expect("an entry document");
        (!doc.is_expired_at(now)).then_some(doc)
    }
}

impl Side for Files {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = self.read(w.index(i), Timestamp::now());
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(w, std::iter::once(w.index(i)));
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = Timestamp::now();
        let out: Vec<_> = w.batch(i).map(|k| self.read(k, now)).collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        self.write(w, w.batch(i));
    }

    fn scan(&mut self, _: &Workload) -> usize {
        let now = Timestamp::now();
        let mut items: Vec<Document> = Vec::new();
        for ent in fs::read_dir(&self.dir).expect("list") {
            let ent = ent.expect("a directory entry");
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || !name.ends_with(ENTRY_EXT) {
                continue;
            }
            let bytes = fs::read(ent.path()).expect("read");
            let doc = decode_document(&bytes).expect("an entry document");
            if !doc.is_expired_at(now) {
                items.push(doc);
            }
        }
        items.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = Files::open(&dir.path().join("raw"), &w);
    raw.write(&w, 0..w.keys.len());

    let store = FileTreeStore::builder(dir.path().join("kv"))
        .durability(Durability::None)
        .open()
        .expect("open the filetree store");
    let url = format!(
        "filetree://{}?durability=none",
        dir.path().join("dyn").display()
    );
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the filetree store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "filetree",
        &w,
        &mut [
            ("baseline_std_fs", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        false,
    );
}

criterion_group! {
    name = filetree_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(filetree_benches);
