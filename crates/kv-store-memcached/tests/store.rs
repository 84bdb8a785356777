//! Store tests beyond the conformance suite: the consistent-hash ring over the two test
//! servers, long keys, long TTLs, limits and errors.

use std::time::Duration;

use async_memcached::{Client, MetaProtocol};
use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt, PutOptions, Ttl};
use kv_store_memcached::{MemcachedConfig, MemcachedStore, format};

const VAR: &str = "KV_TEST_MEMCACHED_URL";

fn base_url() -> Option<String> {
    let u = kv_conformance::service_url(VAR);
    if u.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{VAR} must be set under CI=true"
        );
        eprintln!("skipped: {VAR} is not set (start it: cargo xtask services up memcached)");
    }
    u
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("kvtest-store-{}-{nanos:x}", std::process::id())
}

#[tokio::test]
async fn keys_spread_over_servers_and_gets_find_puts() {
    let Some(base) = base_url() else { return };
    let cfg = MemcachedConfig::from_url(&base).unwrap();
    let prefix = unique_prefix();
    let store = MemcachedStore::connect(&format!("{base}?prefix={prefix}"))
        .await
        .unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    for k in &keys {
        store.put("c", k, k).await.unwrap();
    }
    for k in &keys {
        assert_eq!(
            store.get::<String>("c", k).await.unwrap().as_deref(),
            Some(k.as_str())
        );
    }
    if cfg.servers.len() < 2 {
        eprintln!("only one server in {VAR}: spread not checked");
        return;
    }
    // Each item lives on exactly the server the ring names, and every server holds some.
    for server in &cfg.servers {
        let single = MemcachedStore::connect(&format!("memcached://{server}?prefix={prefix}"))
            .await
            .unwrap();
        let mut here = 0;
        for k in &keys {
            let found = single.get_bytes("c", k).await.unwrap().is_some();
            assert_eq!(found, store.server_of("c", k) == server, "{k} on {server}");
            here += usize::from(found);
        }
        assert!(here > 0, "no key on {server}");
    }
}

#[tokio::test]
async fn long_keys_and_long_ttls() {
    let Some(base) = base_url() else { return };
    let prefix = unique_prefix();
    let store = MemcachedStore::connect(&format!("{base}?prefix={prefix}"))
        .await
        .unwrap();
    let long = "ü".repeat(800);
    let other = format!("{long}x");
    let forty_days = Duration::from_secs(40 * 24 * 3600);
    store
        .put_opts(
            "c",
            &long,
            Bytes::from_static(b"a"),
            PutOptions::default().with_ttl(forty_days),
        )
        .await
        .unwrap();
    store
        .put_bytes("c", &other, Bytes::from_static(b"b"))
        .await
        .unwrap();
    assert_eq!(store.get_bytes("c", &long).await.unwrap().unwrap(), "a");
    assert_eq!(store.get_bytes("c", &other).await.unwrap().unwrap(), "b");
    let Some(Ttl::Remaining(left)) = store.ttl("c", &long).await.unwrap() else {
        panic!("expected a ttl");
    };
    assert!(left > forty_days - Duration::from_secs(60) && left <= forty_days);
    // memcached itself got an absolute exptime that does not cut the TTL short.
    let (ik, hashed) = format::item_key(&prefix, "c", &long);
    assert!(hashed && ik.len() <= format::MAX_ITEM_KEY);
    let mut client = Client::new(format!("tcp://{}", store.server_of("c", &long)))
        .await
        .unwrap();
    let m = client
        .meta_get(&ik, false, None, Some(&["t"]))
        .await
        .unwrap()
        .unwrap();
    let native = m.ttl_remaining.unwrap();
    assert!(native as u64 >= forty_days.as_secs(), "native ttl {native}");
}

#[tokio::test]
async fn value_limit_is_checked_before_sending() {
    let Some(base) = base_url() else { return };
    let store = MemcachedStore::connect(&format!("{base}?prefix={}", unique_prefix()))
        .await
        .unwrap();
    let max = store.info().capability.max_value_len.unwrap();
    assert!(max < 1024 * 1024);
    let e = store
        .put_bytes("c", "big", Bytes::from(vec![0u8; max + 1]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueTooLarge);
    store
        .put_bytes("c", "fits", Bytes::from(vec![7u8; max]))
        .await
        .unwrap();
    assert_eq!(
        store.get_bytes("c", "fits").await.unwrap().unwrap().len(),
        max
    );
}

#[tokio::test]
async fn unreachable_server_is_temporary_and_urls_hide_secrets() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = MemcachedStore::connect(&format!("memcached://127.0.0.1:{port}?timeout_ms=500"))
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_temporary(), "{e}");
    let e = MemcachedStore::connect("memcached://user:s3cret@127.0.0.1:1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
}
