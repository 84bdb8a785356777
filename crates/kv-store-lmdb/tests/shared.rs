//! Several stores on one environment: two in this process (they share one heed `Env`), and
//! child processes (this test binary run again) incrementing one counter with
//! compare-and-swap while growing the map. Also map growth, long keys and collections in scan
//! order, and the errors of opening.

use std::process::Command;

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt, PutMode, PutOptions, ScanOptions};
use kv_store_lmdb::LmdbStore;

const CHILD_ENV: &str = "KV_STORE_LMDB_CHILD_DIR";
const ROUNDS: u64 = 40;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Adds one to `c/counter` with a compare-and-swap loop.
async fn increment(store: &LmdbStore) {
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
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::ConditionFailed => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn counter(store: &LmdbStore) -> u64 {
    let v = block_on(store.get_bytes("c", "counter")).unwrap().unwrap();
    std::str::from_utf8(&v).unwrap().parse().unwrap()
}

/// The child side of `processes_share_one_environment`: does nothing unless started by it.
#[test]
fn child_increments() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = LmdbStore::builder(path).map_size(1 << 20).open().unwrap();
    block_on(async {
        for i in 0..ROUNDS {
            increment(&store).await;
            if i == ROUNDS / 2 {
                // Grow the map beyond what the other processes mapped.
                let big = Bytes::from(vec![7u8; 3 << 20]);
                let key = format!("big-{}", std::process::id());
                store.put_bytes("big", &key, big).await.unwrap();
            }
        }
        store.close().await.unwrap();
    });
}

#[test]
fn processes_share_one_environment() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.lmdb");
    let store = LmdbStore::builder(&path).map_size(1 << 20).open().unwrap();
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
    // Every increment of every process counted exactly once, and the map the children grew
    // is adopted by this process.
    assert_eq!(counter(&store), 3 * ROUNDS);
    assert_eq!(block_on(store.len("big")).unwrap(), 2);
    block_on(store.put_bytes("c", "after", Bytes::from(vec![1u8; 1 << 20]))).unwrap();
    assert!(store.map_size().unwrap() > 3 << 20);
}

#[test]
fn two_stores_in_one_process_share_one_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.lmdb");
    let a = LmdbStore::open_path(&path).unwrap();
    // A second open of the same directory (even spelled differently) shares the environment:
    // heed, like LMDB, forbids opening one environment twice in a process.
    let b = LmdbStore::open_path(dir.path().join(".").join("kv.lmdb")).unwrap();
    block_on(async {
        a.put("c", "k", &1).await.unwrap();
        assert_eq!(b.get::<i32>("c", "k").await.unwrap(), Some(1));
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
        // Closing one store leaves the other working.
        a.close().await.unwrap();
        assert_eq!(
            a.get_bytes("c", "k").await.unwrap_err().kind(),
            ErrorKind::Closed
        );
        assert_eq!(b.collections().await.unwrap(), vec!["c"]);
        b.close().await.unwrap();
    });
    // Both closed: the environment was closed and opens again.
    let a = LmdbStore::open_path(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let b = LmdbStore::open_path(&path).unwrap();
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
    assert_eq!(counter(&a), 2 * ROUNDS);
}

#[test]
fn the_map_grows_on_demand_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.lmdb");
    let store = LmdbStore::builder(&path)
        .map_size(64 * 1024)
        .open()
        .unwrap();
    let start = store.map_size().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let value = Bytes::from(vec![9u8; 5 << 20]);
    rt.block_on(async {
        // Concurrent writers hit the full map together.
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (s, v) = (store.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..3 {
                    s.put_bytes("big", &format!("{t}-{i}"), v.clone())
                        .await
                        .unwrap();
                }
                let small: Vec<(String, Bytes)> = (0..500)
                    .map(|i| (format!("{t}-small-{i:03}"), Bytes::from(vec![1u8; 512])))
                    .collect();
                let refs: Vec<(&str, Bytes)> =
                    small.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                s.put_many_opts("small", &refs, Default::default())
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert!(store.map_size().unwrap() > start);
    block_on(store.close()).unwrap();
    let store = LmdbStore::builder(&path)
        .map_size(64 * 1024)
        .open()
        .unwrap();
    assert_eq!(
        block_on(store.get_bytes("big", "3-2")).unwrap(),
        Some(value)
    );
    assert_eq!(block_on(store.len("small")).unwrap(), 2000);
}

#[test]
fn long_keys_and_collections_scan_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::open_path(dir.path().join("kv.lmdb")).unwrap();
    let long_collection = "c".repeat(1000);
    block_on(async {
        for collection in ["short", long_collection.as_str()] {
            let base = "p".repeat(600);
            let mut keys: Vec<String> = Vec::new();
            for tail in ["", "a", "b", "ab", "z", "é", "0", "\0"] {
                keys.push(format!("{base}{tail}"));
                keys.push(format!("q{tail}"));
                keys.push(format!("{}{tail}", "p".repeat(440)));
                keys.push(format!("{}{tail}", "p".repeat(470)));
            }
            for (i, k) in keys.iter().enumerate() {
                store.put(collection, k, &i).await.unwrap();
            }
            keys.sort();
            keys.dedup();
            // Every page size gives the keys once, in order.
            for page in [1, 3, 7, 1000] {
                let mut seen = Vec::new();
                let mut cursor = None;
                loop {
                    let opts = ScanOptions::default()
                        .with_page_size(page)
                        .with_cursor(cursor)
                        .keys_only();
                    let p = store.scan_opts(collection, opts).await.unwrap();
                    seen.extend(p.items.into_iter().map(|i| i.key));
                    cursor = p.cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
                assert_eq!(seen, keys, "page size {page}");
            }
            // A prefix longer than the stored head of long keys.
            let prefix = format!("{}a", "p".repeat(600));
            let opts = ScanOptions::default()
                .with_prefix(prefix.clone())
                .keys_only();
            let p = store.scan_opts(collection, opts).await.unwrap();
            let got: Vec<String> = p.items.into_iter().map(|i| i.key).collect();
            let want: Vec<String> = keys
                .iter()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            assert_eq!(got, want);
            for (i, k) in keys.iter().enumerate() {
                assert!(
                    store.get::<usize>(collection, k).await.unwrap().is_some(),
                    "{i}"
                );
            }
        }
        let mut names = store.collections().await.unwrap();
        names.sort();
        assert_eq!(names, vec![long_collection.clone(), "short".to_owned()]);
        assert_eq!(store.clear(&long_collection).await.unwrap(), 32);
        assert_eq!(store.collections().await.unwrap(), vec!["short"]);
    });
}

#[test]
fn relative_paths_and_open_errors() {
    let rel = tempfile::Builder::new()
        .prefix("rel-")
        .tempdir_in(".")
        .unwrap();
    let name = rel.path().file_name().unwrap().to_str().unwrap().to_owned();
    let store = LmdbStore::open(&format!("lmdb://{name}/env")).unwrap();
    block_on(store.put("c", "k", &1)).unwrap();
    block_on(store.close()).unwrap();
    assert!(rel.path().join("env/data.mdb").exists());

    let dir = tempfile::tempdir().unwrap();
    let e = LmdbStore::open_path(dir.path().join("missing/kv")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.to_string().contains("parent directory does not exist"),
        "{e}"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = LmdbStore::open_path(&file).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("data.mdb"), vec![0x5a; 16384]).unwrap();
    let e = LmdbStore::open_path(&junk).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(
        std::fs::read(junk.join("data.mdb")).unwrap(),
        vec![0x5a; 16384]
    );
    let e = LmdbStore::open("lmdb://x?nope=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[test]
fn sync_api_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::open_path(dir.path().join("kv.lmdb"))
        .unwrap()
        .sync();
    store.put("c", "k", &1).unwrap();
    assert_eq!(store.get::<i32>("c", "k").unwrap(), Some(1));
}
