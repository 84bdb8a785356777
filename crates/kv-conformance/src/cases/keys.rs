//! Keys and collection names: every valid UTF-8 string up to the store's documented limit.

use kv_core::{ErrorKind, KvStoreExt};

use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("keys", unicode_keys_and_collections, Data),
        case!("keys", special_characters, Data),
        case!("keys", path_like_names_stay_names, Data),
        case!("keys", empty_key, Data),
        case!("keys", whitespace_and_control_characters, Data),
        case!("keys", case_sensitive, Data),
        case!("keys", long_keys_1500_chars, Data),
        case!("keys", key_length_limit_is_enforced_cleanly),
        case!("keys", collection_length_limit_is_enforced_cleanly),
        case!("keys", many_distinct_similar_keys, Data, NoEviction),
    ]
}

async fn check_names(fx: &Fixture, names: &[&str]) -> CaseResult {
    let s = fx.store();
    for (i, name) in names.iter().enumerate() {
        s.put("keys", name, &i).await?;
        s.put(name, "k", &i).await?;
    }
    for (i, name) in names.iter().enumerate() {
        assert_eq!(s.get::<usize>("keys", name).await?, Some(i), "key {name:?}");
        assert_eq!(
            s.get::<usize>(name, "k").await?,
            Some(i),
            "collection {name:?}"
        );
    }
    if fx.cap().scan {
        let mut listed: Vec<String> = super::collect(s.keys("keys")).await?;
        listed.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        want.dedup();
        assert_eq!(listed, want, "scans return keys exactly as written");
    }
    for name in names {
        assert!(s.delete("keys", name).await?, "delete {name:?}");
    }
    Ok(())
}

async fn unicode_keys_and_collections(fx: Fixture) -> CaseResult {
    check_names(
        &fx,
        &[
            "héllo",
            "世界",
            "🌍🚀",
            "مرحبا",
            "e\u{301}",
            "é",
            "\u{10FFFF}",
            "Ωmega",
            "ß",
            "ǅ",
        ],
    )
    .await
}

async fn special_characters(fx: Fixture) -> CaseResult {
    check_names(
        &fx,
        &[
            "!@#$%^&*()",
            "::",
            "a::b",
            "key:with:colons",
            "%2F",
            "%00",
            "?x=1&y=2",
            "#frag",
            "'quote'",
            "\"dq\"",
            "back\\slash",
            "<tag>",
            "{json}",
            "[arr]",
            "a|b",
            "~home",
            "`tick`",
            "semi;colon",
            "comma,",
            "+plus=",
            "*",
            "?",
            "H_reserved",
            "S_reserved",
        ],
    )
    .await
}

async fn path_like_names_stay_names(fx: Fixture) -> CaseResult {
    check_names(
        &fx,
        &[
            "/",
            "a/b",
            "/abs",
            "..",
            ".",
            "../etc/passwd",
            "a/../b",
            "./x",
            "...",
            "C:\\win",
            "https://example.com/a?b=c",
            "con",
            "NUL",
            "aux.txt",
            "x.json",
            "x.tmp",
            "trailing.",
            "trailing/",
        ],
    )
    .await
}

async fn empty_key(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "", &1).await?;
    assert_eq!(s.get::<i32>("c", "").await?, Some(1));
    assert_eq!(s.get::<i32>("c", " ").await?, None);
    assert!(s.delete("c", "").await?);
    Ok(())
}

async fn whitespace_and_control_characters(fx: Fixture) -> CaseResult {
    check_names(
        &fx,
        &[
            " ",
            "  ",
            " lead",
            "trail ",
            "in side",
            "tab\there",
            "new\nline",
            "cr\r",
            "nul\0byte",
            "\u{7f}",
            "\u{1b}[0m",
            "\u{a0}",
            "\u{200b}",
        ],
    )
    .await
}

async fn case_sensitive(fx: Fixture) -> CaseResult {
    check_names(&fx, &["key", "Key", "KEY", "kEy"]).await
}

async fn long_keys_1500_chars(fx: Fixture) -> CaseResult {
    let long_ascii = "k".repeat(1500);
    let long_unicode = "é".repeat(750);
    let prefix_twin = format!("{}{}", "k".repeat(1499), "x");
    // Each name is used as a key and as a collection: it must fit both limits.
    let max = fx
        .cap()
        .max_key_len
        .unwrap_or(usize::MAX)
        .min(fx.cap().max_collection_len.unwrap_or(usize::MAX));
    let names: Vec<&str> = [
        long_ascii.as_str(),
        long_unicode.as_str(),
        prefix_twin.as_str(),
    ]
    .into_iter()
    .filter(|n| n.len() <= max)
    .collect();
    check_names(&fx, &names).await
}

async fn key_length_limit_is_enforced_cleanly(fx: Fixture) -> CaseResult {
    let Some(max) = fx.cap().max_key_len else {
        // No limit: a 64 KiB key works.
        if fx.cap().stores_data {
            let k = "x".repeat(64 * 1024);
            fx.store().put("c", &k, &1).await?;
            assert_eq!(fx.store().get::<i32>("c", &k).await?, Some(1));
        }
        return Ok(());
    };
    let too_long = "x".repeat(max + 1);
    match fx.store().put("c", &too_long, &1).await {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidKey, "{e}");
            assert!(
                e.to_string().contains(&max.to_string()),
                "the error must name the limit: {e}"
            );
        }
        Ok(()) => panic!("a key above max_key_len ({max}) was accepted"),
    }
    let fits = "x".repeat(max);
    fx.store().put("c", &fits, &1).await?;
    Ok(())
}

async fn collection_length_limit_is_enforced_cleanly(fx: Fixture) -> CaseResult {
    let Some(max) = fx.cap().max_collection_len else {
        // No limit: a 4 KiB collection name works.
        if fx.cap().stores_data {
            let c = "c".repeat(4 * 1024);
            fx.store().put(&c, "k", &1).await?;
            assert_eq!(fx.store().get::<i32>(&c, "k").await?, Some(1));
        }
        return Ok(());
    };
    let too_long = "c".repeat(max + 1);
    match fx.store().put(&too_long, "k", &1).await {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidKey, "{e}");
            assert!(
                e.to_string().contains(&max.to_string()),
                "the error must name the limit: {e}"
            );
        }
        Ok(()) => panic!("a collection name above max_collection_len ({max}) was accepted"),
    }
    let fits = "c".repeat(max);
    fx.store().put(&fits, "k", &1).await?;
    Ok(())
}

async fn many_distinct_similar_keys(fx: Fixture) -> CaseResult {
    let s = fx.store();
    // Keys that a lossy escaping or hashing scheme might merge.
    let mut keys = Vec::new();
    for a in ["a", "A", "_", "-", ".", "/", ":", "%", " ", "\\", "é", "e"] {
        for b in ["", "b", "_b", "%62", "/b"] {
            keys.push(format!("{a}{b}"));
        }
    }
    keys.sort();
    keys.dedup();
    for (i, k) in keys.iter().enumerate() {
        s.put("c", k, &i).await?;
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(s.get::<usize>("c", k).await?, Some(i), "{k:?}");
    }
    Ok(())
}
