//! Locking: a second process (or store) cannot open a log in use.
//!
//! The two-process test re-executes this test binary: with `KV_LOG_LOCK_CHILD=PATH` set, the
//! `child_holds_the_lock` test opens the store at PATH, writes an entry, prints `LOCKED` and
//! holds the file until its standard input closes.

use std::time::{Duration, Instant};

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_engine::testing::{HoldingChild, hold_until_released};
use kv_store_log::LogStore;

const CHILD_ENV: &str = "KV_LOG_LOCK_CHILD";

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
        let store = LogStore::open_path(&path).expect("child opens the store");
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
    let path = dir.path().join("kv.log");
    let child = HoldingChild::spawn("child_holds_the_lock", CHILD_ENV, &path);

    let started = Instant::now();
    let err = LogStore::open_path(&path).expect_err("a second process must not open the log");
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
        let store = LogStore::open_path(&path).expect("opens once the child is gone");
        assert_eq!(store.get::<i32>("c", "from-child").await.unwrap(), Some(1));
        store.close().await.unwrap();
    });
}

#[test]
fn second_store_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    let first = LogStore::open_path(&path).unwrap();
    let err = LogStore::open_path(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    // Closing releases the lock at once.
    block_on(first.close()).unwrap();
    let again = LogStore::open_path(&path).expect("reopens after close");
    block_on(again.close()).unwrap();
}

#[test]
fn dropping_the_store_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    drop(LogStore::open_path(&path).unwrap());
    drop(LogStore::open_path(&path).expect("reopens after drop"));
}
