//! Durable stores keep what they acknowledged across a close and reopen.

use std::time::Duration;

use kv_core::{KvStoreExt, Ttl};

use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("persistence", reopen_keeps_entries, Data, Reopen),
        case!("persistence", reopen_keeps_expiry, Data, Ttl, Reopen),
        case!(
            "persistence",
            reopen_keeps_deletes_and_clears,
            Data,
            Clear,
            Reopen
        ),
    ]
}

async fn reopen_keeps_entries(mut fx: Fixture) -> CaseResult {
    for c in ["a", "b", ""] {
        fx.store().put(c, "k", &c).await?;
    }
    fx.store().put_bytes("a", "bin", vec![0u8, 255, 1]).await?;
    fx.reopen().await?;
    for c in ["a", "b", ""] {
        assert_eq!(fx.store().get::<String>(c, "k").await?.as_deref(), Some(c));
    }
    assert_eq!(
        fx.store().get_bytes("a", "bin").await?.as_deref(),
        Some(&[0u8, 255, 1][..])
    );
    Ok(())
}

async fn reopen_keeps_expiry(mut fx: Fixture) -> CaseResult {
    fx.store()
        .put_with_ttl("c", "short", &1, fx.short_ttl())
        .await?;
    fx.store()
        .put_with_ttl("c", "long", &1, Duration::from_secs(3600))
        .await?;
    fx.reopen().await?;
    assert!(
        matches!(fx.store().ttl("c", "long").await?, Some(Ttl::Remaining(d)) if d > Duration::from_secs(3000))
    );
    tokio::time::sleep(fx.expiry_wait()).await;
    assert_eq!(fx.store().get::<i32>("c", "short").await?, None);
    Ok(())
}

async fn reopen_keeps_deletes_and_clears(mut fx: Fixture) -> CaseResult {
    let s = fx.store().clone();
    s.put("c", "deleted", &1).await?;
    s.put("c", "kept", &1).await?;
    s.put("cleared", "k", &1).await?;
    s.delete("c", "deleted").await?;
    s.clear("cleared").await?;
    fx.reopen().await?;
    assert_eq!(fx.store().get::<i32>("c", "deleted").await?, None);
    assert_eq!(fx.store().get::<i32>("c", "kept").await?, Some(1));
    assert_eq!(fx.store().get::<i32>("cleared", "k").await?, None);
    Ok(())
}
