//! Many tasks at once on one store handle.

use std::sync::Arc;

use kv_core::{Bytes, KvStoreExt};
use tokio::sync::Barrier;

use crate::{CaseResult, Fixture};

const TASKS: usize = 64;

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("concurrency", tasks_on_distinct_keys, Data, NoEviction),
        case!("concurrency", tasks_on_one_key, Data),
        case!(
            "concurrency",
            batches_and_single_ops_mixed,
            Data,
            NoEviction
        ),
    ]
}

async fn tasks_on_distinct_keys(fx: Fixture) -> CaseResult {
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let s = fx.store().clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in 0..20 {
                let k = format!("t{t}-k{i}");
                s.put("c", &k, &(t * 1000 + i)).await?;
                assert_eq!(s.get::<usize>("c", &k).await?, Some(t * 1000 + i));
            }
            for i in (0..20).step_by(2) {
                assert!(s.delete("c", &format!("t{t}-k{i}")).await?);
            }
            Ok::<(), kv_core::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let s = fx.store();
    for t in 0..TASKS {
        for i in 0..20 {
            let got = s.get::<usize>("c", &format!("t{t}-k{i}")).await?;
            let want = (i % 2 == 1).then_some(t * 1000 + i);
            assert_eq!(got, want, "t{t}-k{i}");
        }
    }
    Ok(())
}

async fn tasks_on_one_key(fx: Fixture) -> CaseResult {
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let s = fx.store().clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..10 {
                // Each value is self-consistent, so a torn write would show.
                let v = Bytes::from(format!("{t}:{}", "x".repeat(t * 100)));
                s.put_bytes("c", "hot", v).await?;
                if let Some(read) = s.get_bytes("c", "hot").await? {
                    let text = std::str::from_utf8(&read).expect("utf-8");
                    let (n, pad) = text.split_once(':').expect("well-formed");
                    let n: usize = n.parse().expect("writer id");
                    assert_eq!(pad.len(), n * 100, "torn value");
                }
            }
            Ok::<(), kv_core::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    assert!(fx.store().get_bytes("c", "hot").await?.is_some());
    Ok(())
}

async fn batches_and_single_ops_mixed(fx: Fixture) -> CaseResult {
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let s = fx.store().clone();
        handles.push(tokio::spawn(async move {
            let keys: Vec<String> = (0..10).map(|i| format!("b{t}-{i}")).collect();
            let entries: Vec<(&str, usize)> = keys.iter().map(|k| (k.as_str(), t)).collect();
            s.put_many("c", &entries).await?;
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let got: Vec<Option<usize>> = s.get_many("c", &refs).await?;
            assert!(got.iter().all(|v| *v == Some(t)));
            assert_eq!(s.delete_many("c", &refs[..5]).await?, 5);
            Ok::<(), kv_core::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}
