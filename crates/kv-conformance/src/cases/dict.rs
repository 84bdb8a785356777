//! spoonbill's dict semantics: len, contains, pop, popitem, update, equality, iteration —
//! without spoonbill's bugs (falsy values are values; pop of a missing key is `None`).

use std::collections::BTreeMap;

use kv_core::KvStoreExt;
use serde_json::{Value, json};

use super::collect;
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("dict", len_counts_live_entries, Data, Scan),
        case!("dict", contains, Data),
        case!("dict", pop_returns_and_removes, Data),
        case!("dict", pop_of_missing_key_is_none, ReadOnlySafe),
        case!("dict", pop_item_drains_the_collection, Data, Scan),
        case!("dict", update_writes_every_pair, Data),
        case!("dict", equals_a_map, Data, Scan),
        case!("dict", equals_another_store, Data, Scan),
        case!("dict", iteration_over_keys_values_items, Data, Scan),
        case!("dict", falsy_values_are_values, Data),
        case!("dict", concurrent_pops_return_a_value_once, Data),
    ]
}

async fn len_counts_live_entries(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert_eq!(s.len("c").await?, 0);
    assert!(s.is_empty("c").await?);
    for i in 0..12 {
        s.put("c", &format!("k{i}"), &i).await?;
    }
    s.put("c", "k0", &100).await?;
    s.put("other", "x", &1).await?;
    assert_eq!(s.len("c").await?, 12);
    assert!(!s.is_empty("c").await?);
    s.delete("c", "k1").await?;
    assert_eq!(s.len("c").await?, 11);
    Ok(())
}

async fn contains(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert!(!s.contains("c", "k").await?);
    s.put("c", "k", &Value::Null).await?;
    assert!(
        s.contains("c", "k").await?,
        "a null value is still contained"
    );
    Ok(())
}

async fn pop_returns_and_removes(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &json!({"a": 1})).await?;
    assert_eq!(s.pop::<Value>("c", "k").await?, Some(json!({"a": 1})));
    assert!(!s.contains("c", "k").await?);
    assert_eq!(s.pop::<Value>("c", "k").await?, None);
    Ok(())
}

async fn pop_of_missing_key_is_none(fx: Fixture) -> CaseResult {
    assert_eq!(fx.store().pop::<Value>("c", "nope").await?, None);
    Ok(())
}

async fn pop_item_drains_the_collection(fx: Fixture) -> CaseResult {
    let s = fx.store();
    assert_eq!(s.pop_item::<i32>("c").await?, None);
    let mut want = BTreeMap::new();
    for i in 0..5 {
        s.put("c", &format!("k{i}"), &i).await?;
        want.insert(format!("k{i}"), i);
    }
    let mut got = BTreeMap::new();
    while let Some((k, v)) = s.pop_item::<i32>("c").await? {
        assert!(got.insert(k, v).is_none());
        assert!(got.len() <= 5, "pop_item does not terminate");
    }
    assert_eq!(got, want);
    assert_eq!(s.len("c").await?, 0);
    Ok(())
}

async fn update_writes_every_pair(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "a", &0).await?;
    let mut m = BTreeMap::new();
    m.insert("a", 1);
    m.insert("b", 2);
    s.update("c", m).await?;
    s.update("c", Vec::<(String, i32)>::new()).await?;
    assert_eq!(s.get::<i32>("c", "a").await?, Some(1));
    assert_eq!(s.get::<i32>("c", "b").await?, Some(2));
    Ok(())
}

async fn equals_a_map(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let mut m = BTreeMap::new();
    for i in 0..4 {
        m.insert(format!("k{i}"), json!({"i": i}));
    }
    s.update("c", m.clone()).await?;
    assert!(s.equals("c", m.clone()).await?);
    let mut changed = m.clone();
    changed.insert("k0".into(), json!({"i": 99}));
    assert!(!s.equals("c", changed).await?, "a different value");
    let mut fewer = m.clone();
    fewer.remove("k3");
    assert!(!s.equals("c", fewer).await?, "fewer keys");
    let mut more = m.clone();
    more.insert("k9".into(), json!(1));
    assert!(!s.equals("c", more).await?, "more keys");
    Ok(())
}

async fn equals_another_store(fx: Fixture) -> CaseResult {
    let other = fx.open_another().await?;
    let s = fx.store();
    for i in 0..3 {
        s.put("c", &format!("k{i}"), &i).await?;
        other.put("d", &format!("k{i}"), &i).await?;
    }
    assert!(s.same_entries("c", &other, "d").await?);
    other.put("d", "k0", &7).await?;
    assert!(!s.same_entries("c", &other, "d").await?);
    other.destroy().await.ok();
    Ok(())
}

async fn iteration_over_keys_values_items(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..6 {
        s.put("c", &format!("k{i}"), &(i * 10)).await?;
    }
    let mut keys = collect(s.keys("c")).await?;
    keys.sort();
    assert_eq!(keys, (0..6).map(|i| format!("k{i}")).collect::<Vec<_>>());
    let mut values: Vec<i32> = collect(s.values("c")).await?;
    values.sort();
    assert_eq!(values, vec![0, 10, 20, 30, 40, 50]);
    let items: BTreeMap<String, i32> = collect(s.items("c")).await?.into_iter().collect();
    assert_eq!(items.get("k3"), Some(&30));
    assert_eq!(items.len(), 6);
    Ok(())
}

async fn falsy_values_are_values(fx: Fixture) -> CaseResult {
    // spoonbill's Redis store returns the default for 0, "" and []; we must not.
    let s = fx.store();
    for (k, v) in [
        ("zero", json!(0)),
        ("empty", json!("")),
        ("list", json!([])),
        ("f", json!(false)),
        ("null", Value::Null),
    ] {
        s.put("c", k, &v).await?;
        assert_eq!(s.get::<Value>("c", k).await?, Some(v), "{k}");
    }
    Ok(())
}

async fn concurrent_pops_return_a_value_once(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &"treasure").await?;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.pop::<String>("c", "k").await }));
    }
    let mut got = 0;
    for t in tasks {
        if t.await??.is_some() {
            got += 1;
        }
    }
    assert_eq!(got, 1, "the value was popped {got} times");
    Ok(())
}
