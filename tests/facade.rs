//! `kv::open` over every compiled-in scheme: the same program works on each store.

use std::time::Duration;

use kv::prelude::*;

async fn exercise(store: &kv::Store) -> kv::Result<()> {
    store
        .put("users", "alice", &serde_json::json!({"age": 30}))
        .await?;
    assert_eq!(
        store.get::<serde_json::Value>("users", "alice").await?,
        Some(serde_json::json!({"age": 30}))
    );
    store
        .put_with_ttl("sessions", "s", &1, Duration::from_secs(60))
        .await?;
    assert!(matches!(
        store.ttl("sessions", "s").await?,
        Some(Ttl::Remaining(_))
    ));
    assert!(store.delete("users", "alice").await?);
    Ok(())
}

/// A URL for each scheme, under `dir`. Every compiled-in scheme must have one, so a new store
/// cannot join the facade without joining this test.
fn url_for(scheme: &str, dir: &std::path::Path) -> String {
    let at = |name: &str| format!("{scheme}://{}", dir.join(name).display());
    match scheme {
        "memory" => "memory://?max_entries=10".to_owned(),
        "null" => "null://".to_owned(),
        "redb" | "disk" => at("kv.redb"),
        "jsonfile" => at("kv.json"),
        "log" => at("kv.log"),
        "sqlite" => at("kv.sqlite"),
        "unqlite" => at("kv.unqlite"),
        "duckdb" => at("kv.duckdb"),
        // Directory stores.
        "multidisk" | "filetree" | "lmdb" | "rocksdb" | "leveldb" => at(scheme),
        other => panic!("compiled-in scheme {other}:// has no test URL here: add one"),
    }
}

/// Schemes whose URL opens something other than a plain read-write local store (servers are
/// covered by their own crates' suites against real servers).
const SPECIAL: &[&str] = &[
    "null",
    "safetensors",
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "valkey",
    "valkeys",
    "valkey+cluster",
    "valkeys+cluster",
    "memcached",
    "nats",
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "etcd",
];

#[tokio::test]
async fn every_scheme_opens_and_works() {
    for scheme in kv::schemes().iter().filter(|s| !SPECIAL.contains(s)) {
        let dir = tempfile::tempdir().unwrap();
        let url = url_for(scheme, dir.path());
        let store = kv::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        exercise(&store)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        store.close().await.unwrap();
        if store.info().capability.durable {
            // Reopened, the data is still there.
            let store = kv::open(&url).await.unwrap();
            assert!(store.exists("sessions", "s").await.unwrap(), "{url}");
            store.close().await.unwrap();
        }
    }
    let null = kv::open("null://").await.unwrap();
    null.put("c", "k", &1).await.unwrap();
    assert_eq!(null.get::<i32>("c", "k").await.unwrap(), None);
}

#[tokio::test]
async fn every_path_scheme_accepts_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::env::current_dir().unwrap();
    let rel = pathdiff(dir.path(), &cwd);
    for scheme in kv::schemes()
        .iter()
        .filter(|s| !SPECIAL.contains(s) && **s != "memory")
    {
        let url = url_for(scheme, &rel);
        let store = kv::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        store.put("c", "k", &1).await.unwrap();
        store.close().await.unwrap();
        // The data landed under the absolute directory the relative path names.
        let abs = url_for(scheme, dir.path());
        let store = kv::open(&abs).await.unwrap();
        assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(1), "{url}");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn relative_redb_paths_resolve_against_the_working_directory() {
    // `redb://relative/path` is relative (not a host); checked without changing the process
    // working directory, which other tests share, by comparing with the absolute form.
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::env::current_dir().unwrap();
    let rel = pathdiff(dir.path(), &cwd).join("rel.redb");
    let store = kv::open(&format!("redb://{}", rel.display()))
        .await
        .unwrap();
    store.put("c", "k", &1).await.unwrap();
    store.close().await.unwrap();
    assert!(
        dir.path().join("rel.redb").exists(),
        "file not created at {}",
        rel.display()
    );
}

/// `target` relative to `base` (both absolute), with `..` segments as needed.
fn pathdiff(target: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(a, b)| a == b).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[tokio::test]
async fn bad_urls_are_config_errors_with_guidance() {
    for (url, needle) in [
        ("nosuch://x", "unknown store scheme"),
        ("data.redb", "not a store URL"),
        ("memory://?max_entries=zero", "max_entries"),
        ("memory://?bogus=1", "unknown URL parameter"),
        ("memory://somehost", "memory://"),
        ("null://?x=1", "unknown URL parameter"),
    ] {
        let err = kv::open(url).await.expect_err(url);
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}

#[tokio::test]
async fn unusable_paths_fail_cleanly() {
    let err = kv::open("redb:///proc/definitely/not/here.redb")
        .await
        .expect_err("bad path");
    assert!(
        matches!(err.kind(), ErrorKind::Config | ErrorKind::Unavailable),
        "{err}"
    );
    assert!(err.to_string().contains("/proc/definitely"), "{err}");
}

#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let err = kv::open("nosuch://user:hunter2@host:1/db?password=hunter2")
        .await
        .expect_err("unknown scheme");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
}

#[tokio::test]
async fn static_and_dynamic_dispatch_agree() {
    let static_store = kv::memory::MemoryStore::new();
    static_store.put("c", "k", &"v").await.unwrap();
    let dynamic: kv::Store = std::sync::Arc::new(static_store.clone());
    assert_eq!(
        dynamic.get::<String>("c", "k").await.unwrap().as_deref(),
        Some("v")
    );
    assert_eq!(dynamic.info().kind, "memory");
}

/// The facade reaches a real Redis (started by `cargo xtask services up redis`); without one the
/// test says so, and under CI=true it fails.
#[tokio::test]
async fn redis_opens_through_the_facade() {
    let Some(url) = std::env::var("KV_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true: KV_TEST_REDIS_URL must be set (cargo xtask services up redis)"
        );
        eprintln!("skipped: KV_TEST_REDIS_URL is not set (cargo xtask services up redis)");
        return;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}namespace=kv-facade-test-{}", std::process::id());
    let store = kv::open(&url).await.unwrap();
    exercise(&store).await.unwrap();
    store.destroy().await.unwrap();
    store.close().await.unwrap();
}
