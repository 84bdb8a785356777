//! Put-if-absent and compare-and-swap, including races with exactly one winner.

use std::sync::Arc;

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt, PutMode, PutOptions, Version};
use tokio::sync::Barrier;

use super::expect_kind;
use crate::{CaseResult, Fixture};

const RACERS: usize = 32;

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!(
            "conditional",
            if_absent_inserts_when_missing,
            Data,
            IfAbsent
        ),
        case!("conditional", if_absent_fails_when_present, Data, IfAbsent),
        case!("conditional", if_absent_race_has_one_winner, Data, IfAbsent),
        case!(
            "conditional",
            versions_change_on_every_write,
            Data,
            CompareAndSwap
        ),
        case!(
            "conditional",
            cas_with_current_version_succeeds,
            Data,
            CompareAndSwap
        ),
        case!(
            "conditional",
            cas_with_stale_version_fails,
            Data,
            CompareAndSwap
        ),
        case!(
            "conditional",
            cas_on_missing_entry_fails,
            Data,
            CompareAndSwap
        ),
        case!("conditional", cas_race_has_one_winner, Data, CompareAndSwap),
        case!(
            "conditional",
            cas_counter_loses_no_increment,
            Data,
            CompareAndSwap
        ),
        case!(
            "conditional",
            get_or_insert_with_agrees_under_concurrency,
            Data,
            IfAbsent
        ),
        case!("conditional", unsupported_modes_are_errors),
    ]
}

fn if_absent() -> PutOptions {
    PutOptions::default().with_mode(PutMode::IfAbsent)
}

fn if_version(v: Version) -> PutOptions {
    PutOptions::default().with_mode(PutMode::IfVersion(v))
}

async fn if_absent_inserts_when_missing(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put_opts("c", "k", Bytes::from_static(b"1"), if_absent())
        .await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(1));
    assert!(s.put_if_absent("c", "k2", &2).await?);
    Ok(())
}

async fn if_absent_fails_when_present(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    let r = s
        .put_opts("c", "k", Bytes::from_static(b"2"), if_absent())
        .await;
    expect_kind(r, ErrorKind::ConditionFailed);
    assert!(!s.put_if_absent("c", "k", &3).await?);
    assert_eq!(
        s.get::<i32>("c", "k").await?,
        Some(1),
        "a failed put must not write"
    );
    Ok(())
}

async fn if_absent_race_has_one_winner(fx: Fixture) -> CaseResult {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let s = fx.store().clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.put_if_absent("c", "prize", &i).await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await?? {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored: Option<usize> = fx.store().get("c", "prize").await?;
    assert_eq!(
        stored,
        Some(winners[0]),
        "the stored value is not the winner's"
    );
    Ok(())
}

async fn versions_change_on_every_write(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    let v1 = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    s.put("c", "k", &1).await?;
    let v2 = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    assert_ne!(v1, v2, "rewriting the same value must give a new version");
    // Reading does not change the version.
    let v3 = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    assert_eq!(v2, v3);
    Ok(())
}

async fn cas_with_current_version_succeeds(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    let v = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    s.put_opts("c", "k", Bytes::from_static(b"2"), if_version(v))
        .await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    Ok(())
}

async fn cas_with_stale_version_fails(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    let v = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    s.put("c", "k", &2).await?;
    let r = s
        .put_opts("c", "k", Bytes::from_static(b"3"), if_version(v.clone()))
        .await;
    expect_kind(r, ErrorKind::ConditionFailed);
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    // A deleted and recreated entry does not resurrect an old version either.
    s.delete("c", "k").await?;
    s.put("c", "k", &4).await?;
    let r = s
        .put_opts("c", "k", Bytes::from_static(b"5"), if_version(v))
        .await;
    expect_kind(r, ErrorKind::ConditionFailed);
    Ok(())
}

async fn cas_on_missing_entry_fails(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    let v = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    s.delete("c", "k").await?;
    let r = s
        .put_opts("c", "k", Bytes::from_static(b"2"), if_version(v))
        .await;
    expect_kind(r, ErrorKind::ConditionFailed);
    assert_eq!(s.get_bytes("c", "k").await?, None);
    Ok(())
}

async fn cas_race_has_one_winner(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &"start").await?;
    let v = s
        .get_entry("c", "k")
        .await?
        .and_then(|e| e.version)
        .expect("version");
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let s = s.clone();
        let v = v.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let value = Bytes::from(i.to_string());
            match s.put_opts("c", "k", value, if_version(v)).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::ConditionFailed => Ok(false),
                Err(e) => Err(e),
            }
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await?? {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(s.get::<usize>("c", "k").await?, Some(winners[0]));
    Ok(())
}

async fn cas_counter_loses_no_increment(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "counter", &0u64).await?;
    let tasks = 8;
    let per_task = 10;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                loop {
                    let e = s.get_entry("c", "counter").await?.expect("counter exists");
                    let n: u64 = serde_json::from_slice(&e.value).expect("counter is a number");
                    let next = Bytes::from((n + 1).to_string());
                    let v = e.version.expect("version");
                    match s.put_opts("c", "counter", next, if_version(v)).await {
                        Ok(()) => break,
                        Err(err) if err.kind() == ErrorKind::ConditionFailed => continue,
                        Err(err) => return Err(err),
                    }
                }
            }
            Ok::<(), kv_core::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    assert_eq!(s.get::<u64>("c", "counter").await?, Some(tasks * per_task));
    Ok(())
}

async fn get_or_insert_with_agrees_under_concurrency(fx: Fixture) -> CaseResult {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let s = fx.store().clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.get_or_insert_with("c", "k", || async move { Ok(i) })
                .await
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await??);
    }
    let stored: usize = fx.store().get("c", "k").await?.expect("a value was stored");
    assert!(
        seen.iter().all(|v| *v == stored),
        "callers disagree: {seen:?}, stored {stored}"
    );
    Ok(())
}

async fn unsupported_modes_are_errors(fx: Fixture) -> CaseResult {
    let cap = fx.cap();
    let s = fx.store();
    if !cap.if_absent {
        let r = s
            .put_opts("c", "k", Bytes::from_static(b"1"), if_absent())
            .await;
        expect_kind(r, ErrorKind::Unsupported);
    }
    if !cap.compare_and_swap {
        let r = s
            .put_opts(
                "c",
                "k",
                Bytes::from_static(b"1"),
                if_version(Version::from_u64(1)),
            )
            .await;
        expect_kind(r, ErrorKind::Unsupported);
    }
    Ok(())
}
