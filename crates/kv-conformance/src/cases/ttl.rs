//! TTL edges: an expired entry is invisible to every operation; lifetimes are never shortened.

use std::time::Duration;

use kv_core::{ErrorKind, KvStore, KvStoreExt, PutMode, PutOptions, ScanOptions, Ttl};
use serde_json::json;

use super::{collect, expect_kind, json};
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("ttl", missing_entry_has_no_ttl, ReadOnlySafe),
        case!("ttl", entry_without_ttl_never_expires, Data),
        case!("ttl", remaining_is_never_above_the_request, Data, Ttl),
        case!("ttl", fractional_seconds_are_kept, Data, Ttl),
        case!("ttl", put_without_ttl_makes_entry_permanent, Data, Ttl),
        case!("ttl", put_with_ttl_replaces_previous_ttl, Data, Ttl),
        case!("ttl", expired_entries_are_invisible, Data, Ttl),
        case!("ttl", expired_entries_are_not_scanned, Data, Ttl, Scan),
        case!("ttl", delete_of_expired_entry_reports_false, Data, Ttl),
        case!(
            "ttl",
            if_absent_succeeds_over_expired_entry,
            Data,
            Ttl,
            IfAbsent
        ),
        case!("ttl", very_long_ttl, Data, Ttl),
        case!("ttl", ttl_above_store_maximum_is_rejected, Ttl),
        case!("ttl", invalid_ttl_error_has_context),
        case!("ttl", cull_removes_expired_and_keeps_live, Data, Ttl),
        case!("ttl", entries_report_expires_at, Data, Ttl),
    ]
}

async fn missing_entry_has_no_ttl(fx: Fixture) -> CaseResult {
    assert_eq!(fx.store().ttl("c", "nope").await?, None);
    Ok(())
}

async fn entry_without_ttl_never_expires(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    assert_eq!(s.ttl("c", "k").await?, Some(Ttl::Never));
    assert_eq!(
        s.get_entry("c", "k").await?.and_then(|e| e.expires_at),
        None
    );
    Ok(())
}

async fn remaining_is_never_above_the_request(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let ttl = Duration::from_secs(30);
    s.put_with_ttl("c", "k", &1, ttl).await?;
    let Some(Ttl::Remaining(left)) = s.ttl("c", "k").await? else {
        panic!("expected a remaining ttl");
    };
    let g = fx.cap().ttl_granularity;
    assert!(left <= kv_core::ttl::round_up(ttl, g), "{left:?} > {ttl:?}");
    assert!(
        left + g + Duration::from_secs(2) >= ttl,
        "{left:?} is far below {ttl:?}"
    );
    Ok(())
}

async fn fractional_seconds_are_kept(fx: Fixture) -> CaseResult {
    // 2.5 s must never become 2 s (py-key-value's Redis store truncates; we must not).
    let s = fx.store();
    let ttl = Duration::from_millis(2500);
    s.put_with_ttl("c", "k", &1, ttl).await?;
    let Some(Ttl::Remaining(left)) = s.ttl("c", "k").await? else {
        panic!("expected a remaining ttl");
    };
    if fx.cap().ttl_granularity <= Duration::from_millis(1) {
        assert!(
            left > Duration::from_millis(2000),
            "2.5 s ttl reported as {left:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        s.get::<i32>("c", "k").await?,
        Some(1),
        "expired before its ttl"
    );
    Ok(())
}

async fn put_without_ttl_makes_entry_permanent(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "k", &1, fx.short_ttl()).await?;
    s.put("c", "k", &2).await?;
    assert_eq!(s.ttl("c", "k").await?, Some(Ttl::Never));
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    Ok(())
}

async fn put_with_ttl_replaces_previous_ttl(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    s.put_with_ttl("c", "k", &2, fx.short_ttl()).await?;
    assert!(matches!(s.ttl("c", "k").await?, Some(Ttl::Remaining(_))));
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(s.get::<i32>("c", "k").await?, None);
    Ok(())
}

async fn expired_entries_are_invisible(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "gone", &1, fx.short_ttl()).await?;
    s.put("c", "live", &2).await?;
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(s.get::<i32>("c", "gone").await?, None, "get");
    assert_eq!(s.get_entry("c", "gone").await?, None, "get_entry");
    let many: Vec<Option<i32>> = s.get_many("c", &["gone", "live"]).await?;
    assert_eq!(many, vec![None, Some(2)], "get_many");
    assert_eq!(s.ttl("c", "gone").await?, None, "ttl");
    assert!(!s.exists("c", "gone").await?, "exists");
    Ok(())
}

async fn expired_entries_are_not_scanned(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..5 {
        s.put_with_ttl("c", &format!("gone{i}"), &i, fx.short_ttl())
            .await?;
    }
    s.put("c", "live", &1).await?;
    tokio::time::sleep(fx.expiry_wait()).await;
    let keys = collect(s.keys("c")).await?;
    assert_eq!(keys, vec!["live".to_owned()]);
    let items = collect(s.scan("c", ScanOptions::default())).await?;
    assert_eq!(items.len(), 1);
    assert_eq!(s.len("c").await?, 1);
    Ok(())
}

async fn delete_of_expired_entry_reports_false(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "k", &1, fx.short_ttl()).await?;
    s.put_with_ttl("c", "k2", &1, fx.short_ttl()).await?;
    tokio::time::sleep(fx.expiry_wait()).await;
    assert!(
        !s.delete("c", "k").await?,
        "an expired entry does not exist"
    );
    assert_eq!(s.delete_many("c", &["k2"]).await?, 0);
    Ok(())
}

async fn if_absent_succeeds_over_expired_entry(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_with_ttl("c", "k", &1, fx.short_ttl()).await?;
    tokio::time::sleep(fx.expiry_wait()).await;
    let opts = PutOptions::default().with_mode(PutMode::IfAbsent);
    s.put_opts("c", "k", json(json!(2)), opts).await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    assert_eq!(s.ttl("c", "k").await?, Some(Ttl::Never));
    Ok(())
}

async fn very_long_ttl(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let long = fx
        .cap()
        .ttl_max
        .unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600));
    s.put_with_ttl("c", "k", &1, long).await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(1));
    assert!(matches!(s.ttl("c", "k").await?, Some(Ttl::Remaining(d)) if d > long / 2));
    Ok(())
}

async fn ttl_above_store_maximum_is_rejected(fx: Fixture) -> CaseResult {
    let Some(max) = fx.cap().ttl_max else {
        // No maximum: the largest representable TTL must be rejected, never panic.
        let r = fx.store().put_with_ttl("c", "k", &1, Duration::MAX).await;
        expect_kind(r, ErrorKind::InvalidTtl);
        return Ok(());
    };
    let r = fx
        .store()
        .put_with_ttl("c", "k", &1, max + Duration::from_secs(1))
        .await;
    expect_kind(r, ErrorKind::InvalidTtl);
    Ok(())
}

async fn invalid_ttl_error_has_context(fx: Fixture) -> CaseResult {
    let opts = PutOptions::default().with_ttl(Duration::ZERO);
    let err = fx
        .store()
        .put_opts("users", "alice", json(json!(1)), opts)
        .await
        .expect_err("zero ttl must be rejected");
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    assert!(err.store().is_some(), "error names no store: {err}");
    assert_eq!(err.operation(), Some(kv_core::Operation::Put), "{err}");
    assert_eq!(err.collection(), Some("users"), "{err}");
    assert_eq!(err.key(), Some("alice"), "{err}");
    Ok(())
}

async fn cull_removes_expired_and_keeps_live(fx: Fixture) -> CaseResult {
    let s = fx.store();
    for i in 0..5 {
        s.put_with_ttl("c", &format!("gone{i}"), &i, fx.short_ttl())
            .await?;
    }
    s.put("c", "live", &1).await?;
    s.put_with_ttl("c", "later", &1, Duration::from_secs(3600))
        .await?;
    tokio::time::sleep(fx.expiry_wait()).await;
    let culled = s.cull().await?;
    assert!(
        culled <= 5,
        "cull removed {culled} entries, only 5 had expired"
    );
    if !fx.cap().ttl_native {
        assert_eq!(
            culled, 5,
            "a store without native expiry must cull what expired"
        );
    }
    assert_eq!(s.get::<i32>("c", "live").await?, Some(1));
    assert_eq!(s.get::<i32>("c", "later").await?, Some(1));
    assert_eq!(s.cull().await?, 0, "a second cull finds nothing");
    Ok(())
}

async fn entries_report_expires_at(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let before = kv_core::Timestamp::now();
    s.put_with_ttl("c", "k", &1, Duration::from_secs(60))
        .await?;
    let e = s.get_entry("c", "k").await?.expect("entry");
    let at = e.expires_at.expect("expires_at must be reported");
    let g = fx.cap().ttl_granularity + Duration::from_secs(1);
    let lo = before.checked_add(Duration::from_secs(60)).unwrap();
    assert!(
        at.duration_since(lo).unwrap_or_default() < g + Duration::from_secs(5),
        "{at} vs {lo}"
    );
    assert!(
        lo.duration_since(at).unwrap_or_default() < g,
        "{at} is before {lo}"
    );
    Ok(())
}
