//! Scans: completeness across pages, prefixes (with pattern metacharacters), cursors,
//! ordering, collection isolation.

use std::collections::BTreeSet;

use kv_core::{Bytes, Cursor, ErrorKind, KvStore, KvStoreExt, PutManyOptions, ScanOptions};

use super::{collect, expect_kind};
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("scan", empty_collection_scans_empty, Scan, ReadOnlySafe),
        case!("scan", pages_cover_every_key_once, Data, Scan, NoEviction),
        case!("scan", page_size_one, Data, Scan),
        case!("scan", prefix_selects_exactly, Data, Scan),
        case!("scan", prefix_with_pattern_metacharacters, Data, Scan),
        case!("scan", entries_carry_values, Data, Scan),
        case!("scan", keys_only_omits_entries, Data, Scan),
        case!("scan", ordered_scans_are_sorted, Data, ScanOrdered),
        case!("scan", cursor_resumes_in_a_new_scan, Data, Scan),
        case!("scan", collections_do_not_leak_into_scans, Data, Scan),
        case!("scan", keys_present_throughout_are_seen, Data, Scan),
        case!("scan", foreign_cursor_is_an_error, Data, Scan),
        case!("scan", scan_sees_ten_thousand_keys, Data, Scan, NoEviction),
    ]
}

async fn put_keys(fx: &Fixture, c: &str, keys: &[String]) -> kv_core::Result<()> {
    let entries: Vec<(&str, Bytes)> = keys
        .iter()
        .map(|k| (k.as_str(), Bytes::from(format!("\"{}\"", k.len()))))
        .collect();
    for chunk in entries.chunks(500) {
        fx.store()
            .put_many_opts(c, chunk, PutManyOptions::default())
            .await?;
    }
    Ok(())
}

async fn scan_keys(fx: &Fixture, c: &str, opts: ScanOptions) -> kv_core::Result<Vec<String>> {
    Ok(collect(fx.store().scan(c, opts.keys_only()))
        .await?
        .into_iter()
        .map(|i| i.key)
        .collect())
}

async fn empty_collection_scans_empty(fx: Fixture) -> CaseResult {
    assert!(
        scan_keys(&fx, "nothing-here", ScanOptions::default())
            .await?
            .is_empty()
    );
    assert_eq!(fx.store().len("nothing-here").await?, 0);
    assert!(fx.store().is_empty("nothing-here").await?);
    Ok(())
}

async fn pages_cover_every_key_once(fx: Fixture) -> CaseResult {
    let keys: Vec<String> = (0..250).map(|i| format!("key-{i}")).collect();
    put_keys(&fx, "c", &keys).await?;
    let got = scan_keys(&fx, "c", ScanOptions::default().with_page_size(7)).await?;
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a key was returned twice");
    assert_eq!(unique, keys.iter().collect(), "scan is missing keys");
    Ok(())
}

async fn page_size_one(fx: Fixture) -> CaseResult {
    let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    put_keys(&fx, "c", &keys).await?;
    let page = fx
        .store()
        .scan_opts("c", ScanOptions::default().with_page_size(1))
        .await?;
    assert!(
        page.items.len() <= 1,
        "page of size 1 had {} items",
        page.items.len()
    );
    let got = scan_keys(&fx, "c", ScanOptions::default().with_page_size(1)).await?;
    assert_eq!(
        got.into_iter().collect::<BTreeSet<_>>(),
        keys.into_iter().collect()
    );
    Ok(())
}

async fn prefix_selects_exactly(fx: Fixture) -> CaseResult {
    let keys: Vec<String> = [
        "user:1", "user:2", "user:10", "users", "user", "admin:1", "u", "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    put_keys(&fx, "c", &keys).await?;
    let got: BTreeSet<String> = scan_keys(&fx, "c", ScanOptions::default().with_prefix("user:"))
        .await?
        .into_iter()
        .collect();
    let want: BTreeSet<String> = ["user:1", "user:2", "user:10"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
    let all = scan_keys(&fx, "c", ScanOptions::default().with_prefix("")).await?;
    assert_eq!(all.len(), keys.len());
    let none = scan_keys(&fx, "c", ScanOptions::default().with_prefix("zzz")).await?;
    assert!(none.is_empty());
    Ok(())
}

async fn prefix_with_pattern_metacharacters(fx: Fixture) -> CaseResult {
    // Glob (Redis MATCH), LIKE (SQL) and regex metacharacters must be taken literally.
    let keys: Vec<String> = [
        "a*b", "a*bc", "axb", "a?c", "abc", "a[1]", "a1", "a%z", "a_z", "aXz", "a\\b", "a.b",
        "a^b", "a$b", "a{1}", "a(1)", "a|b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    put_keys(&fx, "c", &keys).await?;
    for (prefix, want) in [
        ("a*", vec!["a*b", "a*bc"]),
        ("a?", vec!["a?c"]),
        ("a[", vec!["a[1]"]),
        ("a%", vec!["a%z"]),
        ("a_", vec!["a_z"]),
        ("a\\", vec!["a\\b"]),
        ("a.", vec!["a.b"]),
        ("a^", vec!["a^b"]),
        ("a$", vec!["a$b"]),
        ("a{", vec!["a{1}"]),
        ("a(", vec!["a(1)"]),
        ("a|", vec!["a|b"]),
    ] {
        let got: BTreeSet<String> = scan_keys(&fx, "c", ScanOptions::default().with_prefix(prefix))
            .await?
            .into_iter()
            .collect();
        let want: BTreeSet<String> = want.into_iter().map(str::to_owned).collect();
        assert_eq!(got, want, "prefix {prefix:?}");
    }
    Ok(())
}

async fn entries_carry_values(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..20 {
        s.put("c", &format!("k{i:02}"), &i).await?;
    }
    let items = collect(s.scan("c", ScanOptions::default().with_page_size(6))).await?;
    assert_eq!(items.len(), 20);
    for item in items {
        let entry = item.entry.expect("entries scan returns entries");
        let n: i32 = serde_json::from_slice(&entry.value)?;
        assert_eq!(format!("k{n:02}"), item.key);
    }
    let values: Vec<i32> = collect(s.values("c")).await?;
    assert_eq!(values.iter().sum::<i32>(), (0..20).sum::<i32>());
    Ok(())
}

async fn keys_only_omits_entries(fx: Fixture) -> CaseResult {
    fx.store().put("c", "k", &1).await?;
    let page = fx
        .store()
        .scan_opts("c", ScanOptions::default().keys_only())
        .await?;
    assert_eq!(page.items.len(), 1);
    assert!(page.items[0].entry.is_none());
    Ok(())
}

async fn ordered_scans_are_sorted(fx: Fixture) -> CaseResult {
    let keys: Vec<String> = ["b", "a", "ab", "B", "é", "z", "aa", "😀", "0", "a0", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    put_keys(&fx, "c", &keys).await?;
    let got = scan_keys(&fx, "c", ScanOptions::default().with_page_size(3)).await?;
    let mut want = keys.clone();
    want.sort();
    assert_eq!(got, want, "ordered scans sort by UTF-8 bytes");
    Ok(())
}

async fn cursor_resumes_in_a_new_scan(fx: Fixture) -> CaseResult {
    let keys: Vec<String> = (0..30).map(|i| format!("k{i:02}")).collect();
    put_keys(&fx, "c", &keys).await?;
    let s = fx.store();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<Cursor> = None;
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 100, "scan does not end");
        // Each page comes from a fresh scan, resumed from the cursor's text form, as a
        // client in another process would.
        let resumed = cursor.as_ref().map(|c| Cursor::new(c.to_string()));
        let page = s
            .scan_opts(
                "c",
                ScanOptions::default()
                    .keys_only()
                    .with_page_size(8)
                    .with_cursor(resumed),
            )
            .await?;
        for item in page.items {
            assert!(seen.insert(item.key.clone()), "{} returned twice", item.key);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, keys.into_iter().collect());
    Ok(())
}

async fn collections_do_not_leak_into_scans(fx: Fixture) -> CaseResult {
    let s = fx.store();
    // Collection names that are prefixes of each other, or contain separators.
    for (c, k) in [
        ("a", "1"),
        ("ab", "2"),
        ("a:", "3"),
        ("a::b", "4"),
        ("a/b", "5"),
        ("A", "6"),
    ] {
        s.put(c, k, &1).await?;
    }
    assert_eq!(collect(s.keys("a")).await?, vec!["1".to_owned()]);
    assert_eq!(collect(s.keys("ab")).await?, vec!["2".to_owned()]);
    assert_eq!(collect(s.keys("a:")).await?, vec!["3".to_owned()]);
    assert_eq!(collect(s.keys("a::b")).await?, vec!["4".to_owned()]);
    assert_eq!(collect(s.keys("a/b")).await?, vec!["5".to_owned()]);
    assert_eq!(collect(s.keys("A")).await?, vec!["6".to_owned()]);
    Ok(())
}

async fn keys_present_throughout_are_seen(fx: Fixture) -> CaseResult {
    let stable: Vec<String> = (0..100).map(|i| format!("stable-{i:03}")).collect();
    put_keys(&fx, "c", &stable).await?;
    let s = fx.store().clone();
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            s.put("c", &format!("churn-{i:03}"), &i).await?;
            if i % 2 == 0 {
                s.delete("c", &format!("churn-{:03}", i / 2)).await?;
            }
        }
        Ok::<(), kv_core::Error>(())
    });
    let got = scan_keys(&fx, "c", ScanOptions::default().with_page_size(5)).await?;
    writer.await??;
    let got: BTreeSet<String> = got.into_iter().collect();
    for k in &stable {
        assert!(
            got.contains(k),
            "{k} existed for the whole scan but was not returned"
        );
    }
    Ok(())
}

async fn foreign_cursor_is_an_error(fx: Fixture) -> CaseResult {
    fx.store().put("c", "k", &1).await?;
    let bogus = ScanOptions::default().with_cursor(Some(Cursor::new("\u{0}not a cursor\u{1}")));
    expect_kind(
        fx.store().scan_opts("c", bogus).await,
        ErrorKind::InvalidArgument,
    );
    Ok(())
}

async fn scan_sees_ten_thousand_keys(fx: Fixture) -> CaseResult {
    let keys: Vec<String> = (0..10_000).map(|i| format!("k{i:05}")).collect();
    put_keys(&fx, "c", &keys).await?;
    let got = scan_keys(&fx, "c", ScanOptions::default()).await?;
    assert_eq!(got.len(), 10_000);
    assert_eq!(fx.store().len("c").await?, 10_000);
    Ok(())
}
