//! Collections: listing, isolation, the default collection, clear and destroy.

use kv_core::{KvStore, KvStoreExt};

use super::collect;
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("collections", same_key_in_two_collections, Data),
        case!("collections", separator_lookalikes_do_not_collide, Data),
        case!("collections", empty_name_is_the_default_collection, Data),
        case!(
            "collections",
            listing_shows_written_collections,
            Data,
            ListCollections
        ),
        case!(
            "collections",
            listing_names_the_default_collection,
            Data,
            ListCollections
        ),
        case!(
            "collections",
            clear_empties_only_that_collection,
            Data,
            Clear
        ),
        case!("collections", clear_returns_the_count, Data, Clear),
        case!("collections", clear_of_unknown_collection_is_zero, Clear),
        case!("collections", cleared_collection_is_usable, Data, Clear),
        case!("collections", destroy_removes_everything, Data, Destroy),
        case!(
            "collections",
            destroy_leaves_other_stores_alone,
            Data,
            Destroy
        ),
        case!("collections", destroyed_store_is_usable, Data, Destroy),
    ]
}

async fn same_key_in_two_collections(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c1", "k", &1).await?;
    s.put("c2", "k", &2).await?;
    assert_eq!(s.get::<i32>("c1", "k").await?, Some(1));
    assert_eq!(s.get::<i32>("c2", "k").await?, Some(2));
    assert!(s.delete("c1", "k").await?);
    assert_eq!(s.get::<i32>("c2", "k").await?, Some(2));
    Ok(())
}

async fn separator_lookalikes_do_not_collide(fx: Fixture) -> CaseResult {
    // A naive `collection::key` join would map all of these to "a::b::c".
    let s = fx.store();
    let pairs = [
        ("a", "b::c"),
        ("a::b", "c"),
        ("a:", ":b::c"),
        ("a::b::c", ""),
        ("", "a::b::c"),
    ];
    for (i, (c, k)) in pairs.iter().enumerate() {
        s.put(c, k, &i).await?;
    }
    for (i, (c, k)) in pairs.iter().enumerate() {
        assert_eq!(s.get::<usize>(c, k).await?, Some(i), "({c:?}, {k:?})");
    }
    // Same with other common separators.
    let pairs = [
        ("x/y", "z"),
        ("x", "y/z"),
        ("x_y", "z"),
        ("x", "y_z"),
        ("x.y", "z"),
        ("x", "y.z"),
    ];
    for (i, (c, k)) in pairs.iter().enumerate() {
        s.put(c, k, &i).await?;
    }
    for (i, (c, k)) in pairs.iter().enumerate() {
        assert_eq!(s.get::<usize>(c, k).await?, Some(i), "({c:?}, {k:?})");
    }
    Ok(())
}

async fn empty_name_is_the_default_collection(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let default = s.info().default_collection.clone();
    s.put("", "k", &1).await?;
    assert_eq!(s.get::<i32>(&default, "k").await?, Some(1));
    s.put(&default, "k2", &2).await?;
    assert_eq!(s.get::<i32>("", "k2").await?, Some(2));
    assert!(s.delete("", "k2").await?);
    Ok(())
}

async fn listing_shows_written_collections(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let names = ["users", "sessions", "ünïcödé", "with space", "a::b"];
    for c in names {
        s.put(c, "k", &1).await?;
    }
    let listed = s.collections().await?;
    for c in names {
        assert!(
            listed.iter().any(|l| l == c),
            "{c:?} missing from {listed:?}"
        );
    }
    Ok(())
}

async fn listing_names_the_default_collection(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("", "k", &1).await?;
    let listed = s.collections().await?;
    assert!(listed.contains(&s.info().default_collection), "{listed:?}");
    assert!(
        !listed.iter().any(String::is_empty),
        "the empty name is never listed"
    );
    Ok(())
}

async fn clear_empties_only_that_collection(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..5 {
        s.put("doomed", &format!("k{i}"), &i).await?;
        s.put("kept", &format!("k{i}"), &i).await?;
    }
    s.put("doomed2", "k", &1).await?;
    s.clear("doomed").await?;
    for i in 0..5 {
        assert_eq!(s.get::<i32>("doomed", &format!("k{i}")).await?, None);
        assert_eq!(s.get::<i32>("kept", &format!("k{i}")).await?, Some(i));
    }
    assert_eq!(
        s.get::<i32>("doomed2", "k").await?,
        Some(1),
        "a similar name was cleared"
    );
    if fx.cap().scan {
        assert!(collect(s.keys("doomed")).await?.is_empty());
    }
    Ok(())
}

async fn clear_returns_the_count(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..7 {
        s.put("c", &format!("k{i}"), &i).await?;
    }
    assert_eq!(s.clear("c").await?, 7);
    assert_eq!(s.clear("c").await?, 0);
    Ok(())
}

async fn clear_of_unknown_collection_is_zero(fx: Fixture) -> CaseResult {
    assert_eq!(fx.store().clear("never-written").await?, 0);
    Ok(())
}

async fn cleared_collection_is_usable(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    s.clear("c").await?;
    s.put("c", "k", &2).await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    Ok(())
}

async fn destroy_removes_everything(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for c in ["a", "b", ""] {
        s.put(c, "k", &1).await?;
    }
    s.destroy().await?;
    for c in ["a", "b", ""] {
        assert_eq!(s.get::<i32>(c, "k").await?, None);
    }
    if fx.cap().list_collections {
        assert!(s.collections().await?.is_empty());
    }
    Ok(())
}

async fn destroy_leaves_other_stores_alone(fx: Fixture) -> CaseResult {
    let other = fx.open_another().await?;
    fx.store().put("c", "k", &1).await?;
    other.put("c", "k", &2).await?;
    fx.store().destroy().await?;
    assert_eq!(
        other.get::<i32>("c", "k").await?,
        Some(2),
        "destroy reached another store"
    );
    other.destroy().await?;
    other.close().await?;
    Ok(())
}

async fn destroyed_store_is_usable(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    s.destroy().await?;
    s.put("c", "k", &2).await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    Ok(())
}
