//! Store-specific behaviour against the standalone test server (`KV_TEST_REDIS_URL`): native
//! millisecond TTL never rounded down, `destroy` limited to the namespace, passwords never
//! shown, the py-key-value layout.

mod harness;

use std::time::Duration;

use kv_core::{ErrorKind, KvStore, KvStoreExt, PutOptions};
use kv_store_redis::{RedisStore, redis};

fn base() -> Option<String> {
    let url = kv_conformance::service_url("KV_TEST_REDIS_URL");
    if url.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true" && v != "1"),
            "KV_TEST_REDIS_URL is not set (cargo xtask services up redis)"
        );
        eprintln!("skipped: KV_TEST_REDIS_URL is not set (cargo xtask services up redis)");
    }
    url
}

#[tokio::test]
async fn ttl_is_sent_in_milliseconds_rounded_up() {
    let Some(base) = base() else { return };
    let s = RedisStore::connect(&harness::fresh_url(&base))
        .await
        .unwrap();
    s.put_opts(
        "c",
        "k",
        "1".into(),
        PutOptions::default().with_ttl(Duration::from_secs(100)),
    )
    .await
    .unwrap();
    let pttl: i64 = s
        .raw_command(redis::cmd("PTTL").arg(s.redis_key("c", "k")))
        .await
        .unwrap();
    assert!(pttl > 99_000 && pttl <= 100_000, "PTTL {pttl}");
    // 1.5 ms → PX 2, never 1.
    s.put_opts(
        "c",
        "short",
        "1".into(),
        PutOptions::default().with_ttl(Duration::from_micros(1500)),
    )
    .await
    .unwrap();
    s.destroy().await.unwrap();
}

#[tokio::test]
async fn destroy_removes_only_this_namespace() {
    let Some(base) = base() else { return };
    let a = RedisStore::connect(&harness::fresh_url(&base))
        .await
        .unwrap();
    let b = RedisStore::connect(&harness::fresh_url(&base))
        .await
        .unwrap();
    let foreign = format!("kv-foreign-{}", std::process::id());
    a.raw_command::<()>(redis::cmd("SET").arg(&foreign).arg("x"))
        .await
        .unwrap();
    a.put("c", "k", &1).await.unwrap();
    b.put("c", "k", &2).await.unwrap();
    a.destroy().await.unwrap();
    assert_eq!(a.get::<i32>("c", "k").await.unwrap(), None);
    assert_eq!(b.get::<i32>("c", "k").await.unwrap(), Some(2));
    let v: Option<String> = a
        .raw_command(redis::cmd("GET").arg(&foreign))
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("x"));
    a.raw_command::<()>(redis::cmd("DEL").arg(&foreign))
        .await
        .unwrap();
    b.destroy().await.unwrap();
}

#[tokio::test]
async fn passwords_never_show() {
    let Some(base) = base() else { return };
    let hostport = base.split("://").nth(1).unwrap_or("127.0.0.1:6379");
    let url = format!("redis://someone:hunter2@{hostport}?timeout_ms=2000");
    let err = RedisStore::connect(&url).await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    let cfg = kv_store_redis::RedisConfig::from_url(&url).unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
    assert!(!cfg.location.contains("hunter2"));
    // Unreachable server: temporary error, no password.
    let err = RedisStore::connect("redis://u:hunter2@127.0.0.1:1?timeout_ms=500")
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[tokio::test]
async fn pykv_layout_is_py_key_value_compatible() {
    let Some(base) = base() else { return };
    let ns = format!("pykvtest{}", std::process::id());
    let url = harness::with_params(&base, &[("format", "pykv"), ("namespace", &ns)]);
    let s = RedisStore::connect(&url).await.unwrap();
    s.put_bytes("users", "bob", &br#"{"name":"Bob"}"#[..])
        .await
        .unwrap();
    let raw: String = s
        .raw_command(redis::cmd("GET").arg(format!("{ns}:users::bob")))
        .await
        .unwrap();
    assert!(
        raw.starts_with(r#"{"collection": "users", "created_at": ""#),
        "{raw}"
    );
    assert!(
        raw.ends_with(r#""key": "bob", "value": {"name": "Bob"}, "version": 1}"#),
        "{raw}"
    );
    assert_eq!(
        s.get_bytes("users", "bob").await.unwrap().as_deref(),
        Some(&br#"{"name":"Bob"}"#[..])
    );
    let e = s.put("users", "n", &5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Serialization);
    assert_eq!(s.collections().await.unwrap(), vec!["users".to_owned()]);
    assert_eq!(s.len("users").await.unwrap(), 1);
    s.destroy().await.unwrap();
    assert_eq!(s.get_bytes("users", "bob").await.unwrap(), None);
}
