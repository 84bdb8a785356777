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

#[tokio::test]
async fn every_scheme_opens_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("abs.redb");
    let urls = [
        "memory://".to_owned(),
        "memory://?max_entries=10".to_owned(),
        format!("redb://{}", abs.display()),
        format!("disk://{}", dir.path().join("alias.redb").display()),
    ];
    for url in &urls {
        let store = kv::open(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        exercise(&store)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        store.close().await.unwrap();
    }
    let null = kv::open("null://").await.unwrap();
    null.put("c", "k", &1).await.unwrap();
    assert_eq!(null.get::<i32>("c", "k").await.unwrap(), None);
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
