//! Search: keys by glob and regex, values by conditions — the same results whether the store
//! filters natively (pushdown) or kv filters client-side, and a limit that counts matches.

use futures_util::{StreamExt, TryStreamExt};
use kv_core::search::{Condition, Filter};
use kv_core::{Bytes, KvStore, KvStoreExt, PutManyOptions, ScanOptions};
use serde_json::json;
use std::collections::BTreeSet;

use super::{collect, json};
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("search", spoonbill_search_contract, Data, Scan),
        case!(
            "search",
            pushdown_agrees_with_client_side,
            Data,
            Scan,
            NoEviction
        ),
        case!("search", limit_counts_matches, Data, Scan, NoEviction),
        case!("search", globs_escape_sql_wildcards, Data, Scan),
        case!("search", expired_entries_never_match, Data, Scan, Ttl),
        case!("search", binary_values_match_key_patterns_only, Data, Scan),
    ]
}

async fn put_all(fx: &Fixture, c: &str, entries: &[(String, Bytes)]) -> kv_core::Result<()> {
    let refs: Vec<(&str, Bytes)> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    for chunk in refs.chunks(200) {
        fx.store()
            .put_many_opts(c, chunk, PutManyOptions::default())
            .await?;
    }
    Ok(())
}

async fn found(fx: &Fixture, c: &str, filter: Filter) -> kv_core::Result<BTreeSet<String>> {
    let items = collect(fx.store().search(c, filter)).await?;
    Ok(items.into_iter().map(|i| i.key).collect())
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// spoonbill's shared search test (`{str(i): {'a': i, 'b': str(i)}}` for i < 22, plus scalar
/// values), with kv's explicit dialects instead of spoonbill's regex-for-everything.
async fn spoonbill_search_contract(fx: Fixture) -> CaseResult {
    let mut entries: Vec<(String, Bytes)> = (0..22)
        .map(|i| (i.to_string(), json(json!({"a": i, "b": i.to_string()}))))
        .collect();
    entries.push(("x1".into(), json(json!(10))));
    entries.push(("x2".into(), json(json!(20))));
    put_all(&fx, "c", &entries).await?;

    let f = Filter::new()
        .and(Condition::eq("b", "1"))
        .and(Condition::eq("a", 1));
    assert_eq!(found(&fx, "c", f).await?, set(&["1"]));

    let ones = set(&[
        "1", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
    ]);
    assert_eq!(
        found(&fx, "c", Filter::new().key_regex("^1+")?).await?,
        ones
    );
    assert_eq!(found(&fx, "c", Filter::new().key_glob("1*")?).await?, ones);
    assert_eq!(
        found(&fx, "c", Filter::new().and(Condition::regex("b", "^1")?)).await?,
        ones
    );
    assert_eq!(
        found(&fx, "c", Filter::new().key_glob("x?")?).await?,
        set(&["x1", "x2"])
    );
    // A condition on the whole value finds scalars; `a` is a number, never equal to a string.
    assert_eq!(
        found(&fx, "c", Filter::new().and(Condition::eq("", 10))).await?,
        set(&["x1"])
    );
    assert_eq!(
        found(&fx, "c", Filter::new().and(Condition::eq("a", "1"))).await?,
        set(&[])
    );
    Ok(())
}

/// Many filters over values of every JSON type (and a non-JSON one): the store's search must
/// return exactly what filtering a plain scan client-side returns.
async fn pushdown_agrees_with_client_side(fx: Fixture) -> CaseResult {
    let mut entries = Vec::new();
    for i in 0..120i64 {
        let v = match i % 8 {
            0 => json!({"n": i, "s": format!("s{i:03}"), "tag": "even"}),
            1 => json!({"n": i as f64 + 0.5, "s": format!("S{i}"), "nested": {"deep": i % 3}}),
            2 => json!({"n": format!("{i}"), "list": [i, i + 1], "tag": null}),
            3 => json!(i),
            4 => json!(format!("text-{i}")),
            5 => json!({"n": i, "tag": "odd", "flag": i % 2 == 0}),
            6 => json!([i, {"n": i}]),
            _ => json!({"n": 1e3, "s": "é😀", "tag": ["a", "b"]}),
        };
        entries.push((format!("k{i:03}"), json(v)));
    }
    entries.push(("bin".into(), Bytes::from_static(&[0xff, 0x00, 0xc3])));
    put_all(&fx, "c", &entries).await?;

    let filters = vec![
        Filter::new().and(Condition::eq("n", 16)),
        Filter::new().and(Condition::eq("n", 16.0)),
        Filter::new().and(Condition::gt("n", 50)),
        Filter::new()
            .and(Condition::ge("n", 9.5))
            .and(Condition::lt("n", 40)),
        Filter::new().and(Condition::le("n", 1000)),
        Filter::new().and(Condition::gt("s", "s050")),
        Filter::new().and(Condition::lt("s", "S5")),
        Filter::new().and(Condition::is_in("tag", [json!("even"), json!("odd")])),
        Filter::new().and(Condition::eq("tag", json!(null))),
        Filter::new().and(Condition::eq("tag", json!(["a", "b"]))),
        Filter::new().and(Condition::exists("tag")),
        Filter::new().and(Condition::eq("nested.deep", 2)),
        Filter::new().and(Condition::eq("list.1", 19)),
        Filter::new().and(Condition::eq("1.n", 30)),
        Filter::new().and(Condition::eq("flag", true)),
        Filter::new().and(Condition::gt("", 100)),
        Filter::new().and(Condition::regex("", "^text-1")?),
        Filter::new().and(Condition::regex("s", "😀$")?),
        Filter::new().and(Condition::regex("n", "^1")?),
        Filter::new()
            .key_glob("k0[0-4]?")?
            .and(Condition::exists("n")),
        Filter::new().key_regex("[13]$")?,
        Filter::new().key_glob("k1*")?.and(Condition::ge("n", 110)),
    ];
    let all = collect(fx.store().scan("c", ScanOptions::default())).await?;
    assert_eq!(all.len(), entries.len(), "the scan lost entries");
    for filter in filters {
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|item| filter.matches_item(item))
            .map(|item| item.key.clone())
            .collect();
        let got = found(&fx, "c", filter.clone()).await?;
        assert_eq!(got, expected, "search for {filter}");
        let keys: BTreeSet<String> = fx
            .store()
            .search_keys("c", filter.clone())
            .try_collect()
            .await?;
        assert_eq!(keys, expected, "search_keys for {filter}");
    }
    Ok(())
}

/// A limit counts matches, not scanned entries (spoonbill's counted scanned ones and could
/// return nothing although matches existed).
async fn limit_counts_matches(fx: Fixture) -> CaseResult {
    let entries: Vec<(String, Bytes)> = (0..300)
        .map(|i| (format!("k{i:03}"), json(json!({"hit": i % 50 == 49}))))
        .collect();
    put_all(&fx, "c", &entries).await?;
    let filter = Filter::new().and(Condition::eq("hit", true));
    let first: Vec<_> = fx
        .store()
        .search("c", filter.clone())
        .take(4)
        .try_collect()
        .await?;
    assert_eq!(first.len(), 4, "four of the six matches were asked for");
    for item in &first {
        let entry = item.entry.as_ref().expect("search returns entries");
        assert_eq!(&entry.value[..], br#"{"hit":true}"#);
    }
    assert_eq!(found(&fx, "c", filter).await?.len(), 6);
    Ok(())
}

async fn globs_escape_sql_wildcards(fx: Fixture) -> CaseResult {
    let keys = [
        "50%_off", "50x_off", "50%xoff", "a_b", "axb", "a\\b", "[x]", "x", "*", "é?",
    ];
    let entries: Vec<(String, Bytes)> = keys
        .iter()
        .map(|k| (k.to_string(), json(json!({"k": k}))))
        .collect();
    put_all(&fx, "c", &entries).await?;
    let glob = |p: &str| Filter::new().key_glob(p);
    assert_eq!(found(&fx, "c", glob("50%_*")?).await?, set(&["50%_off"]));
    assert_eq!(found(&fx, "c", glob("a_b")?).await?, set(&["a_b"]));
    assert_eq!(
        found(&fx, "c", glob("a?b")?).await?,
        set(&["a_b", "axb", "a\\b"])
    );
    assert_eq!(found(&fx, "c", glob("a\\\\b")?).await?, set(&["a\\b"]));
    assert_eq!(found(&fx, "c", glob("\\[x]")?).await?, set(&["[x]"]));
    assert_eq!(found(&fx, "c", glob("[x]")?).await?, set(&["x"]));
    assert_eq!(found(&fx, "c", glob("\\*")?).await?, set(&["*"]));
    assert_eq!(found(&fx, "c", glob("é?")?).await?, set(&["é?"]));
    assert_eq!(found(&fx, "c", glob("*")?).await?.len(), keys.len());
    Ok(())
}

async fn expired_entries_never_match(fx: Fixture) -> CaseResult {
    fx.store()
        .put_with_ttl("c", "short", &json!({"a": 1}), fx.short_ttl())
        .await?;
    fx.store().put("c", "long", &json!({"a": 1})).await?;
    let filter = Filter::new().and(Condition::eq("a", 1));
    assert_eq!(
        found(&fx, "c", filter.clone()).await?,
        set(&["long", "short"])
    );
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(found(&fx, "c", filter).await?, set(&["long"]));
    Ok(())
}

async fn binary_values_match_key_patterns_only(fx: Fixture) -> CaseResult {
    fx.store()
        .put_bytes("c", "blob", Bytes::from_static(b"\x00\x01binary"))
        .await?;
    fx.store().put("c", "doc", &json!({"x": 1})).await?;
    assert_eq!(
        found(&fx, "c", Filter::new().key_glob("b*")?).await?,
        set(&["blob"])
    );
    assert_eq!(
        found(&fx, "c", Filter::new().and(Condition::exists(""))).await?,
        set(&["doc"]),
        "a value that is not JSON matches no condition"
    );
    Ok(())
}
