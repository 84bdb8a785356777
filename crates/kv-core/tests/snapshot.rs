//! Snapshots end to end on the memory store: save → load round trips, expiry handling,
//! collection selection, malformed input, progress, copy between stores, files.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_core::snapshot::{
    self, CopyOptions, Expiry, LoadOptions, MalformedLine, Progress, SaveOptions, WriteMode,
};
use kv_core::{Bytes, ErrorKind, KvStoreExt, Timestamp};
use kv_store_memory::MemoryStore;

/// A store with JSON values (a big integer, unicode and line-break keys, `null`), the default
/// collection, a binary value and a value with an expiry.
async fn filled() -> MemoryStore {
    let store = MemoryStore::new();
    store
        .put_bytes(
            "users",
            "alice",
            &b"{ \"age\": 30,\n \"tags\": [\"a b\"] }"[..],
        )
        .await
        .unwrap();
    store
        .put_bytes("", "big", &b"123456789012345678901234567890"[..])
        .await
        .unwrap();
    store
        .put_bytes("unicode", "ключ 😀\n\"q\"", &b"null"[..])
        .await
        .unwrap();
    store
        .put_bytes("bin", "blob", &b"\x00\xff\xfe\x80"[..])
        .await
        .unwrap();
    store
        .put_with_ttl("users", "bob", &[1, 2], Duration::from_secs(3600))
        .await
        .unwrap();
    store
}

async fn save_all(store: &MemoryStore) -> String {
    let mut out = Vec::new();
    snapshot::save(store, &mut out, &SaveOptions::default())
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// The lines of a snapshot with `expires_at` cut off (it moves by microseconds when an
/// entry is written again), sorted (stores need not scan in the same order).
fn without_expiry(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l[..l.rfind(",\"expires_at\":").unwrap()].to_owned())
        .collect();
    lines.sort();
    lines
}

async fn expires_at(store: &MemoryStore, collection: &str, key: &str) -> Option<Timestamp> {
    store
        .get_entry(collection, key)
        .await
        .unwrap()
        .unwrap()
        .expires_at
}

fn line(collection: &str, key: &str, value: &str, expires_at: &str) -> String {
    format!(
        "{{\"collection\":\"{collection}\",\"key\":\"{key}\",\"value\":{value},\"expires_at\":{expires_at}}}\n"
    )
}

#[tokio::test]
async fn save_then_load_round_trips_every_value() {
    let store = filled().await;
    let saved = save_all(&store).await;
    assert_eq!(saved.lines().count(), 5, "{saved}");
    assert!(saved.contains(
        "{\"collection\":\"users\",\"key\":\"alice\",\"value\":{\"age\":30,\"tags\":[\"a b\"]},\"expires_at\":null}\n"
    ));
    assert!(saved.contains(
        "{\"collection\":\"bin\",\"key\":\"blob\",\"value_base64\":\"AP/+gA==\",\"expires_at\":null}\n"
    ));
    assert!(saved.contains("\"collection\":\"default_collection\",\"key\":\"big\","));

    let restored = MemoryStore::new();
    let summary = snapshot::load(&restored, saved.as_bytes(), &LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (summary.entries, summary.expired, summary.existing),
        (5, 0, 0)
    );
    assert_eq!(summary.collections, 4);
    assert_eq!(
        without_expiry(&save_all(&restored).await),
        without_expiry(&saved)
    );
    assert_eq!(
        restored.get_bytes("bin", "blob").await.unwrap().unwrap(),
        Bytes::from_static(b"\x00\xff\xfe\x80")
    );
    assert_eq!(
        restored.get_bytes("", "big").await.unwrap().unwrap(),
        Bytes::from_static(b"123456789012345678901234567890")
    );
}

#[tokio::test]
async fn the_remaining_lifetime_is_kept() {
    let store = filled().await;
    let original = expires_at(&store, "users", "bob").await.unwrap();
    let saved = save_all(&store).await;
    assert!(saved.contains(&format!("\"expires_at\":\"{}\"", original.to_rfc3339())));

    let restored = MemoryStore::new();
    snapshot::load(&restored, saved.as_bytes(), &LoadOptions::default())
        .await
        .unwrap();
    let loaded = expires_at(&restored, "users", "bob").await.unwrap();
    // The same instant, give or take the time between computing the TTL and storing it.
    let drift = loaded
        .duration_since(original)
        .or_else(|| original.duration_since(loaded))
        .unwrap();
    assert!(drift < Duration::from_secs(60), "{original:?} → {loaded:?}");
    assert_eq!(expires_at(&restored, "users", "alice").await, None);
}

#[tokio::test]
async fn expired_entries_are_skipped_and_counted_unless_persisted() {
    let input = [
        line("c", "old", "1", "\"2001-01-01T00:00:00.000000Z\""),
        line("c", "new", "2", "\"2999-01-01T00:00:00Z\""),
        "\n".to_owned(),
        line("c", "plain", "3", "null"),
    ]
    .concat();

    let store = MemoryStore::new();
    let summary = snapshot::load(&store, input.as_bytes(), &LoadOptions::default())
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.expired), (2, 1));
    assert!(!store.contains("c", "old").await.unwrap());
    assert!(expires_at(&store, "c", "new").await.is_some());

    let store = MemoryStore::new();
    let opts = LoadOptions::default().with_expiry(Expiry::Persist);
    let summary = snapshot::load(&store, input.as_bytes(), &opts)
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.expired), (2, 1));
    assert_eq!(expires_at(&store, "c", "new").await, None);

    let store = MemoryStore::new();
    let opts = LoadOptions::default().with_expiry(Expiry::PersistAll);
    let summary = snapshot::load(&store, input.as_bytes(), &opts)
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.expired), (3, 0));
    assert_eq!(expires_at(&store, "c", "old").await, None);
}

#[tokio::test]
async fn one_collection_only() {
    let store = filled().await;
    let mut out = Vec::new();
    let opts = SaveOptions::default().with_collection("users");
    let summary = snapshot::save(&store, &mut out, &opts).await.unwrap();
    assert_eq!((summary.entries, summary.collections), (2, 1));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .all(|l| l.starts_with("{\"collection\":\"users\"")),
        "{text}"
    );

    // The empty name is the default collection, on save and on load.
    let mut out = Vec::new();
    let opts = SaveOptions::default().with_collections(["", ""]);
    snapshot::save(&store, &mut out, &opts).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 1);

    let all = save_all(&store).await;
    let restored = MemoryStore::new();
    let opts = LoadOptions::default().with_collections(["bin", ""]);
    let summary = snapshot::load(&restored, all.as_bytes(), &opts)
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.collections), (2, 2));
    let mut names = restored.collections().await.unwrap();
    names.sort();
    assert_eq!(names, ["bin", "default_collection"]);
}

#[tokio::test]
async fn a_malformed_line_is_named_and_what_came_before_is_loaded() {
    let input = [
        line("d", "a", "1", "null"),
        "\n".to_owned(),
        line("d", "b", "2", "null"),
        "{\"collection\":\"d\",\"key\":\"c\",\"value\":\"hunter2\",\"expires_at\":7}\n".to_owned(),
        line("d", "e", "4", "null"),
    ]
    .concat();
    let store = MemoryStore::new();
    let err = snapshot::load(&store, input.as_bytes(), &LoadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    let bad = MalformedLine::of(&err).unwrap();
    assert_eq!(bad.line(), 4);
    assert_eq!(bad.reason(), "expires_at is not a string");
    let text = err.to_string();
    assert!(text.contains("line 4: expires_at"), "{text}");
    assert!(!text.contains("hunter2") && !format!("{err:?}").contains("hunter2"));
    let keys: Vec<String> = futures_util::StreamExt::collect::<Vec<_>>(store.keys("d"))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
}

#[tokio::test]
async fn later_lines_win_and_batches_keep_their_expiry() {
    let later = "\"2999-01-01T00:00:00Z\"";
    let mut input: String = (0..1200)
        .map(|i| line("c", &format!("k{i}"), "1", "null"))
        .collect();
    input.push_str(&line("c", "k1", "2", later));
    input.push_str(&line("c", "k1", "3", "null"));
    input.push_str(&line("c", "k2", "4", later));
    for batch_size in [1, 7, 500] {
        let store = MemoryStore::new();
        let opts = LoadOptions::default().with_batch_size(batch_size);
        let summary = snapshot::load(&store, input.as_bytes(), &opts)
            .await
            .unwrap();
        assert_eq!(summary.entries, 1203);
        assert_eq!(store.len("c").await.unwrap(), 1200);
        assert_eq!(store.get::<i32>("c", "k1").await.unwrap(), Some(3));
        assert_eq!(expires_at(&store, "c", "k1").await, None);
        assert_eq!(store.get::<i32>("c", "k2").await.unwrap(), Some(4));
        assert!(expires_at(&store, "c", "k2").await.is_some());
    }
}

#[tokio::test]
async fn if_absent_keeps_what_is_there() {
    let store = MemoryStore::new();
    store.put("c", "a", &"mine").await.unwrap();
    let input = [
        line("c", "a", "\"theirs\"", "null"),
        line("c", "b", "1", "null"),
        line("c", "b", "2", "null"),
    ]
    .concat();
    let opts = LoadOptions::default().with_mode(WriteMode::IfAbsent);
    let summary = snapshot::load(&store, input.as_bytes(), &opts)
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.existing), (1, 2));
    assert_eq!(
        store.get::<String>("c", "a").await.unwrap().unwrap(),
        "mine"
    );
    assert_eq!(store.get::<i32>("c", "b").await.unwrap(), Some(1));
}

/// Every progress report, as `(done, total, collection)`.
type Seen = Arc<Mutex<Vec<(u64, Option<u64>, String)>>>;

fn recorder() -> (Seen, impl Fn(&Progress<'_>) + Send + Sync + 'static) {
    let seen = Seen::default();
    let sink = seen.clone();
    let record = move |p: &Progress<'_>| {
        sink.lock()
            .unwrap()
            .push((p.done, p.total, p.collection.to_owned()));
    };
    (seen, record)
}

fn assert_counts_up(seen: &Seen, n: u64, total: Option<u64>) {
    let seen = seen.lock().unwrap();
    let done: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(done, (1..=n).collect::<Vec<_>>());
    assert!(seen.iter().all(|s| s.1 == total), "{seen:?}");
}

#[tokio::test]
async fn progress_is_reported_after_every_entry() {
    let store = filled().await;

    let (seen, record) = recorder();
    let opts = SaveOptions::default()
        .with_total(true)
        .with_progress(record);
    let mut out = Vec::new();
    snapshot::save(&store, &mut out, &opts).await.unwrap();
    assert_counts_up(&seen, 5, Some(5));
    let collections: Vec<String> = seen.lock().unwrap().iter().map(|s| s.2.clone()).collect();
    assert_eq!(
        collections,
        ["bin", "default_collection", "unicode", "users", "users"]
    );

    let (seen, record) = recorder();
    let opts = LoadOptions::default().with_progress(record);
    snapshot::load(&MemoryStore::new(), &out[..], &opts)
        .await
        .unwrap();
    assert_counts_up(&seen, 5, None);

    let (seen, record) = recorder();
    let opts = CopyOptions::default().with_progress(record);
    snapshot::copy(&store, &MemoryStore::new(), &opts)
        .await
        .unwrap();
    assert_counts_up(&seen, 5, None);
}

#[tokio::test]
async fn copy_between_two_stores() {
    let src = filled().await;
    let dst = MemoryStore::new();
    let summary = snapshot::copy(&src, &dst, &CopyOptions::default().with_batch_size(2))
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.collections), (5, 4));
    assert_eq!(
        without_expiry(&save_all(&dst).await),
        without_expiry(&save_all(&src).await)
    );
    assert!(expires_at(&dst, "users", "bob").await.is_some());

    // Only some collections; existing entries kept.
    let dst = MemoryStore::new();
    dst.put("users", "alice", &"kept").await.unwrap();
    let opts = CopyOptions::default()
        .with_collection("users")
        .with_mode(WriteMode::IfAbsent)
        .with_expiry(Expiry::Persist);
    let summary = snapshot::copy(&src, &dst, &opts).await.unwrap();
    assert_eq!(
        (summary.entries, summary.existing, summary.collections),
        (1, 1, 1)
    );
    assert_eq!(
        dst.get::<String>("users", "alice").await.unwrap().unwrap(),
        "kept"
    );
    assert_eq!(expires_at(&dst, "users", "bob").await, None);
    assert_eq!(dst.collections().await.unwrap(), ["users"]);
}

#[tokio::test]
async fn files_are_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.jsonl");
    std::fs::write(&path, b"previous").unwrap();
    let store = filled().await;
    let summary = snapshot::save_to_path(&store, &path, &SaveOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.entries, 5);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left: {names:?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        save_all(&store).await
    );

    let restored = MemoryStore::new();
    let summary = snapshot::load_from_path(&restored, &path, &LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.entries, 5);

    let missing = dir.path().join("no/such/dir/x.jsonl");
    let err = snapshot::save_to_path(&store, &missing, &SaveOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    let err = snapshot::load_from_path(&restored, &missing, &LoadOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot open"), "{err}");
}

/// A writer that fails like a pipe whose reader has gone.
struct ClosedPipe;

impl io::Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[tokio::test]
async fn write_errors_keep_the_io_error_as_their_source() {
    let store = filled().await;
    let err = snapshot::save(&store, ClosedPipe, &SaveOptions::default())
        .await
        .unwrap_err();
    let io = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .unwrap();
    assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    assert!(
        err.to_string().contains("cannot write the snapshot"),
        "{err}"
    );
}
