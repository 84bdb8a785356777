//! Batches: order, duplicates, empty batches, batches larger than the backend's limit.

use kv_core::{Bytes, GetOptions, KvStore, KvStoreExt, PutManyOptions, Ttl};
use serde_json::json;

use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("batch", get_many_keeps_request_order, Data),
        case!("batch", get_many_with_duplicate_keys, Data),
        case!("batch", empty_batches_are_fine),
        case!("batch", put_many_last_duplicate_wins, Data),
        case!("batch", delete_many_counts_duplicates_once, Data),
        case!("batch", large_batches_1000, Data, NoEviction),
        case!("batch", put_many_with_ttl, Data, Ttl),
        case!("batch", put_many_replaces_ttl, Data, Ttl),
        case!("batch", batches_stay_in_their_collection, Data),
    ]
}

async fn get_many_keeps_request_order(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..10 {
        s.put("c", &format!("k{i}"), &i).await?;
    }
    let keys = ["k7", "missing", "k0", "k9", "k3", "nope"];
    let got: Vec<Option<i32>> = s.get_many("c", &keys).await?;
    assert_eq!(got, vec![Some(7), None, Some(0), Some(9), Some(3), None]);
    Ok(())
}

async fn get_many_with_duplicate_keys(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "a", &1).await?;
    let got: Vec<Option<i32>> = s.get_many("c", &["a", "a", "b", "a"]).await?;
    assert_eq!(got, vec![Some(1), Some(1), None, Some(1)]);
    Ok(())
}

async fn empty_batches_are_fine(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert!(
        s.get_many_opts("c", &[], GetOptions::default())
            .await?
            .is_empty()
    );
    s.put_many_opts("c", &[], PutManyOptions::default()).await?;
    assert_eq!(s.delete_many("c", &[]).await?, 0);
    Ok(())
}

async fn put_many_last_duplicate_wins(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c", &[("k", 1), ("other", 5), ("k", 2)]).await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    assert_eq!(s.get::<i32>("c", "other").await?, Some(5));
    Ok(())
}

async fn delete_many_counts_duplicates_once(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "a", &1).await?;
    s.put("c", "b", &1).await?;
    assert_eq!(s.delete_many("c", &["a", "a", "b", "x", "b"]).await?, 2);
    Ok(())
}

async fn large_batches_1000(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let keys: Vec<String> = (0..1000).map(|i| format!("key-{i:04}")).collect();
    let entries: Vec<(&str, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), Bytes::from(i.to_string())))
        .collect();
    s.put_many_opts("c", &entries, PutManyOptions::default())
        .await?;
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = s.get_many_opts("c", &refs, GetOptions::default()).await?;
    assert_eq!(got.len(), 1000);
    for (i, e) in got.iter().enumerate() {
        let e = e.as_ref().unwrap_or_else(|| panic!("{} missing", keys[i]));
        assert_eq!(e.value, Bytes::from(i.to_string()), "{}", keys[i]);
    }
    assert_eq!(s.delete_many("c", &refs).await?, 1000);
    assert!(
        s.get_many_opts("c", &refs, GetOptions::default())
            .await?
            .iter()
            .all(Option::is_none)
    );
    Ok(())
}

async fn put_many_with_ttl(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let opts = PutManyOptions::default().with_ttl(fx.short_ttl());
    let entries = [
        ("a", Bytes::from_static(b"1")),
        ("b", Bytes::from_static(b"2")),
    ];
    s.put_many_opts("c", &entries, opts).await?;
    s.put("c", "stay", &3).await?;
    for k in ["a", "b"] {
        assert!(matches!(s.ttl("c", k).await?, Some(Ttl::Remaining(d)) if d <= fx.short_ttl()));
    }
    tokio::time::sleep(fx.expiry_wait()).await;
    let got: Vec<Option<i32>> = s.get_many("c", &["a", "b", "stay"]).await?;
    assert_eq!(got, vec![None, None, Some(3)]);
    Ok(())
}

async fn put_many_replaces_ttl(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "k", &1, fx.short_ttl()).await?;
    s.put_many("c", &[("k", 2)]).await?;
    assert_eq!(s.ttl("c", "k").await?, Some(Ttl::Never));
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    Ok(())
}

async fn batches_stay_in_their_collection(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_many("c1", &[("k", json!(1))]).await?;
    s.put_many("c2", &[("k", json!(2))]).await?;
    let a: Vec<Option<i32>> = s.get_many("c1", &["k"]).await?;
    let b: Vec<Option<i32>> = s.get_many("c2", &["k"]).await?;
    assert_eq!((a, b), (vec![Some(1)], vec![Some(2)]));
    assert_eq!(s.delete_many("c1", &["k"]).await?, 1);
    assert_eq!(s.get::<i32>("c2", "k").await?, Some(2));
    Ok(())
}
