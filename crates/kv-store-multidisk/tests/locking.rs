//! Directory locking: a second process (or store) cannot open a directory in use; plus the
//! file layout: escaped and hashed names, clear and destroy remove only the store's files.
//!
//! The two-process test re-executes this test binary: with `KV_MULTIDISK_LOCK_CHILD=PATH` set, the
//! `child_holds_the_lock` test opens the store at PATH, writes an entry, prints `LOCKED` and
//! holds the file until its standard input closes.

use std::time::{Duration, Instant};

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_engine::testing::{HoldingChild, hold_until_released};
use kv_store_multidisk::MultiDiskStore;

const CHILD_ENV: &str = "KV_MULTIDISK_LOCK_CHILD";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Not a test on its own: the body of the child process of `second_process_is_refused_at_once`.
#[test]
fn child_holds_the_lock() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    block_on(async {
        let store = MultiDiskStore::open_path(&path).expect("child opens the store");
        store
            .put("c", "from-child", &1)
            .await
            .expect("child writes");
        hold_until_released();
        store.close().await.expect("child closes");
    });
}

#[test]
fn second_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv");
    let child = HoldingChild::spawn("child_holds_the_lock", CHILD_ENV, &path);

    let started = Instant::now();
    let err =
        MultiDiskStore::open_path(&path).expect_err("a second process must not open the directory");
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        !err.is_temporary(),
        "a lock held by a process is not a blip: {err}"
    );
    let text = err.to_string();
    assert!(text.contains("locked by another process"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        waited < Duration::from_secs(2),
        "the open waited {waited:?}"
    );
    eprintln!("second process: {err}");

    // The child lets go; its write is there and the file opens.
    child.release();
    block_on(async {
        let store = MultiDiskStore::open_path(&path).expect("opens once the child is gone");
        assert_eq!(store.get::<i32>("c", "from-child").await.unwrap(), Some(1));
        store.close().await.unwrap();
    });
}

#[test]
fn second_store_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv");
    let first = MultiDiskStore::open_path(&path).unwrap();
    let err = MultiDiskStore::open_path(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    // Closing releases the lock at once.
    block_on(first.close()).unwrap();
    let again = MultiDiskStore::open_path(&path).expect("reopens after close");
    block_on(again.close()).unwrap();
}

#[test]
fn dropping_the_store_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv");
    drop(MultiDiskStore::open_path(&path).unwrap());
    drop(MultiDiskStore::open_path(&path).expect("reopens after drop"));
}

#[test]
fn layout_names_clear_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv");
    let long = "é".repeat(1500);
    let names = ["users", "..", "a/b", "\0", "Upper", long.as_str()];
    block_on(async {
        let store = MultiDiskStore::open_path(&path).unwrap();
        for n in names {
            store.put(n, "k", &n).await.unwrap();
        }
        std::fs::write(path.join("notes.txt"), b"mine").unwrap();
        let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        expected.sort();
        assert_eq!(store.collections().await.unwrap(), expected);
        // Every file stays inside the directory.
        let files: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), names.len() + 3, "{files:?}");
        assert!(files.iter().any(|f| f.starts_with("h_")), "{files:?}");
        assert!(path.join("c_%2E%2E.redb").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        store.close().await.unwrap();

        // Reopened: names come back from the files, hashed ones too.
        let store = MultiDiskStore::open_path(&path).unwrap();
        assert_eq!(store.collections().await.unwrap(), expected);
        assert_eq!(
            store.get::<String>(&long, "k").await.unwrap().as_deref(),
            Some(long.as_str())
        );
        assert_eq!(store.clear("users").await.unwrap(), 1);
        assert!(!path.join("c_users.redb").exists());
        assert_eq!(store.get::<String>("users", "k").await.unwrap(), None);
        store.destroy().await.unwrap();
        assert!(store.collections().await.unwrap().is_empty());
        let mut left: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["_kv.lock", "_kv_meta.redb", "notes.txt"]);
        // Still usable after destroy, and versions never repeat.
        store.put("users", "k", &1).await.unwrap();
        store.close().await.unwrap();
    });
}

#[test]
fn a_file_in_the_way_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = MultiDiskStore::open_path(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    assert_eq!(err.operation(), Some(kv_core::Operation::Open));
}

#[test]
fn a_damaged_collection_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv");
    block_on(async {
        let store = MultiDiskStore::open_path(&path).unwrap();
        store.put("c", "k", &1).await.unwrap();
        store.close().await.unwrap();
        std::fs::write(path.join("c_c.redb"), b"garbage, not a redb file at all").unwrap();
        let store = MultiDiskStore::open_path(&path).unwrap();
        let err = store.get_bytes("c", "k").await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Corrupt | ErrorKind::Backend),
            "{err}"
        );
        assert!(store.collections().await.is_err());
        // Other collections still work.
        store.put("d", "k", &1).await.unwrap();
        store.close().await.unwrap();
    });
}
