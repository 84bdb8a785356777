//! py-key-value's 36 base cases (`tests/stores/base.py`), in Rust terms.

use std::time::Duration;

use kv_core::{ErrorKind, KvStore, KvStoreExt, PutOptions, Ttl};
use serde_json::json;

use super::{expect_kind, json};
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("base", store_describes_itself, ReadOnlySafe),
        case!("base", empty_get, ReadOnlySafe),
        case!("base", empty_put),
        case!("base", empty_ttl, ReadOnlySafe),
        case!("base", put_serialization_errors),
        case!("base", get_put_get, Data),
        case!("base", put_many_get, Data),
        case!("base", put_many_get_many, Data),
        case!("base", put_put_get_many, Data),
        case!("base", put_put_get_many_missing_one, Data),
        case!("base", put_get_delete_get, Data),
        case!("base", put_many_get_get_delete_many_get_many, Data),
        case!("base", put_many_get_many_delete_many_get_many, Data),
        case!("base", delete_missing),
        case!("base", put_delete_delete, Data),
        case!("base", delete_many_missing),
        case!("base", put_delete_many, Data),
        case!("base", delete_many_delete_many, Data),
        case!("base", get_put_get_delete_get, Data),
        case!("base", get_put_get_put_delete_get, Data),
        case!("base", put_many_delete_delete_get_many, Data),
        case!("base", put_ttl_get_ttl, Data, Ttl),
        case!("base", zero_ttl_is_invalid),
        case!("base", put_expired_get_none, Data, Ttl),
        case!("base", long_collection_name, Data),
        case!("base", special_characters_in_collection_name, Data),
        case!("base", long_key_name, Data),
        case!("base", special_characters_in_key_name, Data),
        case!("base", not_unbounded, Data, Eviction),
        case!("base", concurrent_operations, Data),
        case!("base", minimum_put_many_get_many, Data),
        case!("base", minimum_put_many_delete_many, Data),
    ]
}

async fn store_describes_itself(fx: Fixture) -> CaseResult {
    let info = fx.store().info();
    assert!(!info.kind.is_empty(), "store kind must not be empty");
    assert!(
        !info.default_collection.is_empty(),
        "default collection must not be empty"
    );
    let cap = info.capability;
    assert!(!cap.scan_ordered || cap.scan, "scan_ordered implies scan");
    assert!(!cap.ttl_native || cap.ttl, "ttl_native implies ttl");
    assert!(!cap.compare_and_swap || cap.stores_data);
    Ok(())
}

async fn empty_get(fx: Fixture) -> CaseResult {
    assert_eq!(fx.store().get_bytes("c", "k").await?, None);
    Ok(())
}

async fn empty_put(fx: Fixture) -> CaseResult {
    fx.store().put("c", "k", &json!({"a": 1})).await?;
    Ok(())
}

async fn empty_ttl(fx: Fixture) -> CaseResult {
    assert_eq!(fx.store().ttl("c", "k").await?, None);
    Ok(())
}

async fn put_serialization_errors(fx: Fixture) -> CaseResult {
    // A map with non-string keys has no JSON form.
    let mut bad = std::collections::BTreeMap::new();
    bad.insert((1, 2), "x");
    expect_kind(
        fx.store().put("c", "k", &bad).await,
        ErrorKind::Serialization,
    );
    // Nothing was written.
    if fx.cap().stores_data {
        assert_eq!(fx.store().get_bytes("c", "k").await?, None);
    }
    Ok(())
}

async fn get_put_get(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert_eq!(s.get::<serde_json::Value>("c", "k").await?, None);
    s.put("c", "k", &json!({"test": "test"})).await?;
    assert_eq!(
        s.get::<serde_json::Value>("c", "k").await?,
        Some(json!({"test": "test"}))
    );
    Ok(())
}

async fn put_many_get(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c", &[("k1", json!({"v": 1})), ("k2", json!({"v": 2}))])
        .await?;
    assert_eq!(s.get("c", "k1").await?, Some(json!({"v": 1})));
    assert_eq!(s.get("c", "k2").await?, Some(json!({"v": 2})));
    Ok(())
}

async fn put_many_get_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c", &[("k1", json!({"v": 1})), ("k2", json!({"v": 2}))])
        .await?;
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2"]).await?;
    assert_eq!(got, vec![Some(json!({"v": 1})), Some(json!({"v": 2}))]);
    Ok(())
}

async fn put_put_get_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k1", &json!({"v": 1})).await?;
    s.put("c", "k2", &json!({"v": 2})).await?;
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2"]).await?;
    assert_eq!(got, vec![Some(json!({"v": 1})), Some(json!({"v": 2}))]);
    Ok(())
}

async fn put_put_get_many_missing_one(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k1", &json!({"v": 1})).await?;
    s.put("c", "k2", &json!({"v": 2})).await?;
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2", "k3"]).await?;
    assert_eq!(
        got,
        vec![Some(json!({"v": 1})), Some(json!({"v": 2})), None]
    );
    Ok(())
}

async fn put_get_delete_get(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &json!({"test": "test"})).await?;
    assert!(s.exists("c", "k").await?);
    assert!(s.delete("c", "k").await?);
    assert_eq!(s.get_bytes("c", "k").await?, None);
    Ok(())
}

async fn put_many_get_get_delete_many_get_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c", &[("k1", json!({"v": 1})), ("k2", json!({"v": 2}))])
        .await?;
    assert_eq!(s.get("c", "k1").await?, Some(json!({"v": 1})));
    assert_eq!(s.get("c", "k2").await?, Some(json!({"v": 2})));
    assert_eq!(s.delete_many("c", &["k1", "k2"]).await?, 2);
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2"]).await?;
    assert_eq!(got, vec![None, None]);
    Ok(())
}

async fn put_many_get_many_delete_many_get_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c", &[("k1", json!({"v": 1})), ("k2", json!({"v": 2}))])
        .await?;
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2"]).await?;
    assert_eq!(got, vec![Some(json!({"v": 1})), Some(json!({"v": 2}))]);
    assert_eq!(s.delete_many("c", &["k1", "k2"]).await?, 2);
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2"]).await?;
    assert_eq!(got, vec![None, None]);
    Ok(())
}

async fn delete_missing(fx: Fixture) -> CaseResult {
    assert!(!fx.store().delete("c", "missing").await?);
    Ok(())
}

async fn put_delete_delete(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &json!({"a": 1})).await?;
    assert!(s.delete("c", "k").await?);
    assert!(!s.delete("c", "k").await?);
    Ok(())
}

async fn delete_many_missing(fx: Fixture) -> CaseResult {
    assert_eq!(fx.store().delete_many("c", &["k1", "k2", "k3"]).await?, 0);
    Ok(())
}

async fn put_delete_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k1", &json!({"a": 1})).await?;
    assert_eq!(s.delete_many("c", &["k1", "k2"]).await?, 1);
    Ok(())
}

async fn delete_many_delete_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k1", &json!({"a": 1})).await?;
    assert_eq!(s.delete_many("c", &["k1", "k2"]).await?, 1);
    assert_eq!(s.delete_many("c", &["k1", "k2"]).await?, 0);
    Ok(())
}

async fn get_put_get_delete_get(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert_eq!(s.get_bytes("c", "k").await?, None);
    s.put("c", "k", &json!({"a": 1})).await?;
    assert_eq!(s.get("c", "k").await?, Some(json!({"a": 1})));
    assert!(s.delete("c", "k").await?);
    assert_eq!(s.get_bytes("c", "k").await?, None);
    Ok(())
}

async fn get_put_get_put_delete_get(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert_eq!(s.get_bytes("c", "k").await?, None);
    s.put("c", "k", &json!({"a": 1})).await?;
    assert_eq!(s.get("c", "k").await?, Some(json!({"a": 1})));
    s.put("c", "k", &json!({"b": 2})).await?;
    // Overwrite replaces the whole value, it does not merge.
    assert_eq!(s.get("c", "k").await?, Some(json!({"b": 2})));
    assert!(s.delete("c", "k").await?);
    assert_eq!(s.get_bytes("c", "k").await?, None);
    Ok(())
}

async fn put_many_delete_delete_get_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c", &[("k1", json!({"v": 1})), ("k2", json!({"v": 2}))])
        .await?;
    assert!(s.delete("c", "k1").await?);
    assert!(s.delete("c", "k2").await?);
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &["k1", "k2"]).await?;
    assert_eq!(got, vec![None, None]);
    Ok(())
}

async fn put_ttl_get_ttl(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "k", &json!({"a": 1}), Duration::from_secs(100))
        .await?;
    assert_eq!(s.get("c", "k").await?, Some(json!({"a": 1})));
    match s.ttl("c", "k").await? {
        Some(Ttl::Remaining(d)) => {
            assert!(
                d <= Duration::from_secs(100),
                "remaining {d:?} exceeds the ttl"
            );
            assert!(
                d >= Duration::from_secs(98),
                "remaining {d:?} is far below 100 s"
            );
        }
        other => panic!("expected a remaining ttl near 100 s, got {other:?}"),
    }
    Ok(())
}

async fn zero_ttl_is_invalid(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let opts = PutOptions::default().with_ttl(Duration::ZERO);
    expect_kind(
        s.put_opts("c", "k", json(json!({"a": 1})), opts).await,
        ErrorKind::InvalidTtl,
    );
    if fx.cap().stores_data {
        assert_eq!(
            s.get_bytes("c", "k").await?,
            None,
            "a rejected put must not write"
        );
    }
    Ok(())
}

async fn put_expired_get_none(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "k", &json!({"a": 1}), fx.short_ttl())
        .await?;
    assert_eq!(s.get("c", "k").await?, Some(json!({"a": 1})));
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(s.get_bytes("c", "k").await?, None);
    Ok(())
}

async fn long_collection_name(fx: Fixture) -> CaseResult {
    // py-key-value's 1500 characters, or the store's declared limit if that is lower (the
    // limit itself is checked by keys::collection_length_limit_is_enforced_cleanly).
    let mut c = "test_collection".repeat(100);
    c.truncate(
        fx.cap()
            .max_collection_len
            .unwrap_or(usize::MAX)
            .min(c.len()),
    );
    let s = fx.store();
    s.put(&c, "k", &json!({"a": 1})).await?;
    assert_eq!(s.get(&c, "k").await?, Some(json!({"a": 1})));
    Ok(())
}

async fn special_characters_in_collection_name(fx: Fixture) -> CaseResult {
    let c = "test_collection!@#$%^&*()";
    let s = fx.store();
    s.put(c, "k", &json!({"a": 1})).await?;
    assert_eq!(s.get(c, "k").await?, Some(json!({"a": 1})));
    Ok(())
}

async fn long_key_name(fx: Fixture) -> CaseResult {
    let k = "test_key".repeat(100);
    let s = fx.store();
    s.put("c", &k, &json!({"a": 1})).await?;
    assert_eq!(s.get("c", &k).await?, Some(json!({"a": 1})));
    Ok(())
}

async fn special_characters_in_key_name(fx: Fixture) -> CaseResult {
    let k = "test_key!@#$%^&*()";
    let s = fx.store();
    s.put("c", k, &json!({"a": 1})).await?;
    assert_eq!(s.get("c", k).await?, Some(json!({"a": 1})));
    Ok(())
}

async fn not_unbounded(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..1000 {
        s.put("c", &format!("test_key_{i}"), &json!({"i": i}))
            .await?;
    }
    assert_eq!(
        s.get_bytes("c", "test_key_0").await?,
        None,
        "oldest entry must be evicted"
    );
    assert!(
        s.exists("c", "test_key_999").await?,
        "newest entry must be kept"
    );
    Ok(())
}

async fn concurrent_operations(fx: Fixture) -> CaseResult {
    let mut tasks = Vec::new();
    for worker in 0..3 {
        let s = fx.store().clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let k = format!("w{worker}-k{i}");
                assert_eq!(s.get_bytes("c", &k).await?, None);
                s.put("c", &k, &json!({"w": worker, "i": i})).await?;
                assert_eq!(s.get("c", &k).await?, Some(json!({"w": worker, "i": i})));
                s.put("c", &k, &json!({"w": worker, "i": i, "again": true}))
                    .await?;
                assert_eq!(
                    s.get("c", &k).await?,
                    Some(json!({"w": worker, "i": i, "again": true}))
                );
                assert!(s.delete("c", &k).await?);
                assert_eq!(s.get_bytes("c", &k).await?, None);
            }
            Ok::<(), kv_core::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn ten() -> Vec<(String, serde_json::Value)> {
    (0..10)
        .map(|i| (format!("k{i}"), json!({"i": i})))
        .collect()
}

async fn minimum_put_many_get_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let items = ten();
    let refs: Vec<(&str, serde_json::Value)> =
        items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    s.put_many("c", &refs).await?;
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let got: Vec<Option<serde_json::Value>> = s.get_many("c", &keys).await?;
    let want: Vec<Option<serde_json::Value>> = items.into_iter().map(|(_, v)| Some(v)).collect();
    assert_eq!(got, want);
    Ok(())
}

async fn minimum_put_many_delete_many(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let items = ten();
    let refs: Vec<(&str, serde_json::Value)> =
        items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    s.put_many("c", &refs).await?;
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(s.delete_many("c", &keys).await?, 10);
    Ok(())
}
