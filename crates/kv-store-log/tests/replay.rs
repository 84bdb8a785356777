//! Replay after crashes: torn last lines and batches are cut off, damaged lines in the middle
//! are errors (or skipped with `repair`), compaction keeps everything, versions never repeat.

use std::io::Write;
use std::path::Path;

use kv_core::{ErrorKind, KvStore, KvStoreExt, PutMode, PutOptions, Version};
use kv_store_log::{LogStore, format};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn fill(path: &Path) {
    block_on(async {
        let s = LogStore::open_path(path).unwrap();
        s.put("c", "a", &1).await.unwrap();
        s.put_many("c", &[("b", 2), ("x", 3)]).await.unwrap();
        s.close().await.unwrap();
    });
}

fn get(s: &LogStore, k: &str) -> Option<i32> {
    block_on(s.get::<i32>("c", k)).unwrap()
}

#[test]
fn torn_last_line_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    fill(&path);
    for torn in [
        &b"{\"op\":\"put\",\"c\":\"c\",\"k\":\"half"[..],
        &b"\x00\x00\x00\x00"[..],
        &b"{\"op\":\"put\",\"c\":\"c\",\"k\":\"d\",\"crc\":\"00000000\"}\n"[..],
    ] {
        let good_len = std::fs::metadata(&path).unwrap().len();
        append(&path, torn);
        let s = LogStore::open_path(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(get(&s, "a"), Some(1));
        assert_eq!(get(&s, "x"), Some(3));
        // Appends go after the good data.
        block_on(s.put("c", "y", &4)).unwrap();
        block_on(s.close()).unwrap();
        let s = LogStore::open_path(&path).unwrap();
        assert_eq!(get(&s, "y"), Some(4));
        block_on(s.delete("c", "y")).unwrap();
        block_on(s.close()).unwrap();
    }
}

#[test]
fn incomplete_batch_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    fill(&path);
    let before = std::fs::read(&path).unwrap();
    block_on(async {
        let s = LogStore::open_path(&path).unwrap();
        s.put_many("c", &[("p", 1), ("q", 2), ("r", 3)])
            .await
            .unwrap();
        s.close().await.unwrap();
    });
    let full = std::fs::read(&path).unwrap();
    // Cut the batch at every byte: either all three entries or none.
    for cut in before.len()..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let s = LogStore::open_path(&path).unwrap();
        let got: Vec<Option<i32>> = ["p", "q", "r"].iter().map(|k| get(&s, k)).collect();
        assert_eq!(got, [None, None, None], "cut at {cut}");
        assert_eq!(get(&s, "x"), Some(3));
        block_on(s.close()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before, "cut at {cut}");
    }
    std::fs::write(&path, &full).unwrap();
    let s = LogStore::open_path(&path).unwrap();
    assert_eq!(get(&s, "r"), Some(3));
}

#[test]
fn damaged_middle_line_is_corrupt_or_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    fill(&path);
    let s = LogStore::open_path(&path).unwrap();
    let (offset, _) = s.entry_location("c", "a").unwrap().unwrap();
    block_on(s.close()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize + 20] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let err = LogStore::open_path(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("repair=true"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was changed");

    let s = LogStore::builder(&path).repair(true).open().unwrap();
    assert_eq!(get(&s, "a"), None);
    assert_eq!(get(&s, "b"), Some(2));
    assert_eq!(s.stats().unwrap().dead_bytes, 0, "repair compacts");
    block_on(s.close()).unwrap();
    // Clean again.
    let s = LogStore::open_path(&path).unwrap();
    assert_eq!(get(&s, "x"), Some(3));
}

#[test]
fn foreign_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for content in [
        &b"hello"[..],
        b"line one\nline two\n",
        b"{\"op\":\"put\"}\n",
    ] {
        let path = dir.path().join("other.txt");
        std::fs::write(&path, content).unwrap();
        let err = LogStore::open_path(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), content);
    }
    // A header cut short by a crash at creation is a new log.
    let path = dir.path().join("torn.log");
    std::fs::write(&path, b"{\"op\":\"hea").unwrap();
    let s = LogStore::open_path(&path).unwrap();
    assert!(block_on(s.collections()).unwrap().is_empty());
    let err = LogStore::open_path(dir.path().join("no/such/dir/kv.log")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("directory does not exist"),
        "{err}"
    );
}

#[test]
fn compaction_keeps_live_data_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    let s = LogStore::builder(&path)
        .compact_min_bytes(4096)
        .compact_ratio(0.5)
        .open()
        .unwrap();
    let value = "v".repeat(100);
    block_on(async {
        for i in 0..200 {
            s.put("c", &format!("k{}", i % 10), &format!("{value}{i}"))
                .await
                .unwrap();
        }
        s.put_bytes("bin", "z", vec![0u8, 255, 7]).await.unwrap();
        s.put_with_ttl("c", "gone", &1, std::time::Duration::from_millis(1))
            .await
            .unwrap();
    });
    let stats = s.stats().unwrap();
    // Automatic compaction kept the file small: 10 live entries of ~150 bytes.
    assert!(stats.file_len < 8 * 4096, "{stats:?}");
    let v = block_on(s.get_entry("c", "k9")).unwrap().unwrap().version;
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(block_on(s.cull()).unwrap(), 1);
    s.compact().unwrap();
    assert_eq!(s.stats().unwrap().dead_bytes, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1 + 10 + 1, "{text}");
    assert!(text.starts_with("{\"op\":\"header\""));
    block_on(s.close()).unwrap();

    let s = LogStore::open_path(&path).unwrap();
    assert_eq!(
        block_on(s.get::<String>("c", "k9")).unwrap(),
        Some(format!("{value}199"))
    );
    assert_eq!(
        block_on(s.get_bytes("bin", "z")).unwrap().as_deref(),
        Some(&[0u8, 255, 7][..])
    );
    assert_eq!(
        block_on(s.get_entry("c", "k9")).unwrap().unwrap().version,
        v
    );
    // A stale version never matches again, not even after destroy.
    let stale = v.clone().unwrap();
    block_on(s.destroy()).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    block_on(s.put("c", "k9", &1)).unwrap();
    let opts = PutOptions::default().with_mode(PutMode::IfVersion(stale));
    let e = block_on(s.put_opts("c", "k9", kv_core::Bytes::from_static(b"2"), opts)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConditionFailed);
    let now = block_on(s.get_entry("c", "k9"))
        .unwrap()
        .unwrap()
        .version
        .unwrap();
    assert!(now.as_u64() > v.as_ref().and_then(Version::as_u64));
}

#[test]
fn lines_are_readable_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    let s = LogStore::open_path(&path).unwrap();
    block_on(s.put("users", "alice", &serde_json_value())).unwrap();
    block_on(s.close()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.starts_with("{\"op\":\"put\",\"c\":\"users\",\"k\":\"alice\""),
        "{line}"
    );
    assert!(line.contains(r#""v":"{\"age\":30}""#), "{line}");
    let crc = &line[line.len() - 10..line.len() - 2];
    let body = &line[..line.len() - 17];
    assert_eq!(format!("{:08x}", format::crc32(body.as_bytes())), crc);
}

fn serde_json_value() -> std::collections::BTreeMap<&'static str, i32> {
    [("age", 30)].into_iter().collect()
}
