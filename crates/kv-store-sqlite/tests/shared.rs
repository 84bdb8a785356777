//! Several connections on one file: two stores in this process, and child processes (this
//! test binary run again) incrementing one counter with compare-and-swap. Also the errors of
//! opening.

use std::path::Path;
use std::process::Command;

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt, PutMode, PutOptions};
use kv_store_sqlite::{SqliteStore, Synchronous};

const CHILD_ENV: &str = "KV_STORE_SQLITE_CHILD_DB";
const ROUNDS: u64 = 40;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Adds one to `c/counter` with a compare-and-swap loop; returns the number of lost races.
async fn increment(store: &SqliteStore) -> u64 {
    let mut lost = 0;
    loop {
        let entry = store.get_entry("c", "counter").await.unwrap();
        let (n, mode) = match entry {
            Some(e) => {
                let n: u64 = std::str::from_utf8(&e.value).unwrap().parse().unwrap();
                (n, PutMode::IfVersion(e.version.unwrap()))
            }
            None => (0, PutMode::IfAbsent),
        };
        let value = Bytes::from((n + 1).to_string());
        match store
            .put_opts("c", "counter", value, PutOptions::default().with_mode(mode))
            .await
        {
            Ok(()) => return lost,
            Err(e) if e.kind() == ErrorKind::ConditionFailed => lost += 1,
            Err(e) => panic!("{e}"),
        }
    }
}

fn counter(store: &SqliteStore) -> u64 {
    let v = block_on(store.get_bytes("c", "counter")).unwrap().unwrap();
    std::str::from_utf8(&v).unwrap().parse().unwrap()
}

/// The child side of `processes_share_one_file`: does nothing unless started by it.
#[test]
fn child_increments() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open_path(path).unwrap();
    block_on(async {
        for _ in 0..ROUNDS {
            increment(&store).await;
        }
        store.close().await.unwrap();
    });
}

#[test]
fn processes_share_one_file() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = SqliteStore::open_path(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["child_increments", "--exact", "--test-threads=1"])
                .env(CHILD_ENV, &path)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    block_on(async {
        for _ in 0..ROUNDS {
            increment(&store).await;
        }
    });
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    // Every increment of every process counted exactly once.
    assert_eq!(counter(&store), 3 * ROUNDS);
}

#[test]
fn two_stores_in_one_process_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let a = SqliteStore::open_path(&path).unwrap();
    let b = SqliteStore::builder(&path)
        .synchronous(Synchronous::Normal)
        .open()
        .unwrap();
    block_on(async {
        a.put("c", "k", &1).await.unwrap();
        assert_eq!(b.get::<i32>("c", "k").await.unwrap(), Some(1));
        // A compare-and-swap race between the two: exactly one winner.
        let v = a
            .get_entry("c", "k")
            .await
            .unwrap()
            .unwrap()
            .version
            .unwrap();
        let opts = PutOptions::default().with_mode(PutMode::IfVersion(v));
        let (ra, rb) = tokio::join!(
            a.put_opts("c", "k", Bytes::from_static(b"2"), opts.clone()),
            b.put_opts("c", "k", Bytes::from_static(b"3"), opts)
        );
        assert!(ra.is_ok() != rb.is_ok(), "{ra:?} {rb:?}");
        // Versions are unique across connections.
        b.put("c", "x", &1).await.unwrap();
        a.put("c", "y", &1).await.unwrap();
        let vx = b.get_entry("c", "x").await.unwrap().unwrap().version;
        let vy = a.get_entry("c", "y").await.unwrap().unwrap().version;
        assert_ne!(vx, vy);
        // Concurrent increments from both stores on a multi-threaded runtime.
        a.close().await.unwrap();
        assert_eq!(b.collections().await.unwrap(), vec!["c"]);
    });
    let a = SqliteStore::open_path(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let (a2, b2) = (a.clone(), b.clone());
        let ta = tokio::spawn(async move {
            for _ in 0..ROUNDS {
                increment(&a2).await;
            }
        });
        let tb = tokio::spawn(async move {
            for _ in 0..ROUNDS {
                increment(&b2).await;
            }
        });
        ta.await.unwrap();
        tb.await.unwrap();
    });
    // `counter` did not exist before: both stores start from IfAbsent.
    assert_eq!(counter(&a), 2 * ROUNDS);
}

#[test]
fn wal_files_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display())).unwrap();
    block_on(store.put("c", "k", &1)).unwrap();
    assert!(Path::new(&format!("{}-wal", path.display())).exists());
    let mode: String = store
        .with_connection(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .with_connection(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
    block_on(store.close()).unwrap();
    let e = store.with_connection(|_| Ok(())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    let store = SqliteStore::open_path(&path).unwrap();
    assert_eq!(block_on(store.get::<i32>("c", "k")).unwrap(), Some(1));
}

#[test]
fn relative_paths() {
    // Relative to the working directory (the package directory under `cargo test`).
    let dir = tempfile::Builder::new()
        .prefix("rel-")
        .tempdir_in(".")
        .unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    let store = SqliteStore::open(&format!("sqlite://{name}/kv.db")).unwrap();
    block_on(store.put("c", "k", &1)).unwrap();
    block_on(store.close()).unwrap();
    assert!(dir.path().join("kv.db").exists());
}

#[test]
fn open_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = SqliteStore::open_path(dir.path().join("missing/kv.db")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("directory does not exist"), "{e}");
    let e = SqliteStore::open_path(dir.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let e = SqliteStore::open_path(&junk).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("not a SQLite database"), "{e}");
    assert_eq!(std::fs::read(&junk).unwrap(), vec![0x5a; 8192]);
    // A database of another format number is refused.
    let other = dir.path().join("other.db");
    let store = SqliteStore::open_path(&other).unwrap();
    store
        .with_connection(|c| c.execute("UPDATE kv_meta SET value = 9 WHERE name = 'format'", []))
        .unwrap();
    block_on(store.close()).unwrap();
    let e = SqliteStore::open_path(&other).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("format 9"), "{e}");
    let e = SqliteStore::open("sqlite://x.db?nope=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[test]
fn in_memory_and_sync_api() {
    let store = SqliteStore::open("sqlite://:memory:").unwrap();
    assert!(!store.info().capability.durable);
    let sync = store.sync();
    sync.put("c", "k", &5).unwrap();
    assert_eq!(sync.get::<i32>("c", "k").unwrap(), Some(5));
    // Without a runtime, operations complete inline.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_path(dir.path().join("kv.db"))
        .unwrap()
        .sync();
    store.put("c", "k", &1).unwrap();
    assert_eq!(store.get::<i32>("c", "k").unwrap(), Some(1));
}

#[test]
fn keys_with_like_wildcards_and_nul_scan_by_prefix() {
    let store = SqliteStore::open_in_memory().unwrap();
    block_on(async {
        for k in ["a%", "a%b", "a_", "ab", "A%", "a\0x", "a"] {
            store.put("c", k, &1).await.unwrap();
        }
        let page = store
            .scan_opts("c", kv_core::ScanOptions::default().with_prefix("a%"))
            .await
            .unwrap();
        let keys: Vec<&str> = page.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["a%", "a%b"]);
        let page = store
            .scan_opts("c", kv_core::ScanOptions::default().with_prefix("a\0"))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].key, "a\0x");
    });
}
