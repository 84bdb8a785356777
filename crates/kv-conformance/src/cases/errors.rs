//! Failure behaviour: corrupt stored bytes are errors (never panics), closed stores refuse
//! work, and errors carry their context.

use kv_core::{ErrorKind, GetOptions, KvStore, KvStoreExt, ScanOptions};

use super::{collect, expect_kind};
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("errors", corrupt_bytes_fail_get, Data, CorruptHook),
        case!(
            "errors",
            corrupt_bytes_fail_batches_and_scans,
            Data,
            CorruptHook
        ),
        case!(
            "errors",
            corrupt_entry_can_be_overwritten_and_deleted,
            Data,
            CorruptHook
        ),
        case!("errors", closed_store_refuses_work, ReadOnlySafe),
        case!("errors", close_twice_is_fine, ReadOnlySafe),
    ]
}

async fn corrupt_bytes_fail_get(fx: Fixture) -> CaseResult {
    fx.store().put("c", "k", &1).await?;
    fx.corrupt("c", "k").await?;
    let err = fx
        .store()
        .get_bytes("c", "k")
        .await
        .expect_err("corrupt bytes must not read");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(err.key(), Some("k"), "the error names the key: {err}");
    // TTL reads decode the same metadata.
    expect_kind(fx.store().ttl("c", "k").await, ErrorKind::Corrupt);
    Ok(())
}

async fn corrupt_bytes_fail_batches_and_scans(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "good", &1).await?;
    s.put("c", "bad", &2).await?;
    fx.corrupt("c", "bad").await?;
    expect_kind(
        s.get_many_opts("c", &["good", "bad"], GetOptions::default())
            .await,
        ErrorKind::Corrupt,
    );
    if fx.cap().scan {
        let r = collect(s.scan("c", ScanOptions::default())).await;
        expect_kind(r, ErrorKind::Corrupt);
    }
    // The healthy entry is unaffected.
    assert_eq!(s.get::<i32>("c", "good").await?, Some(1));
    Ok(())
}

async fn corrupt_entry_can_be_overwritten_and_deleted(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &1).await?;
    fx.corrupt("c", "k").await?;
    s.put("c", "k", &2).await?;
    assert_eq!(s.get::<i32>("c", "k").await?, Some(2));
    fx.corrupt("c", "k").await?;
    // Deleting never needs to decode the old value's content.
    let _ = s.delete("c", "k").await;
    assert_eq!(s.get_bytes("c", "k").await?, None);
    Ok(())
}

async fn closed_store_refuses_work(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.close().await?;
    expect_kind(s.get_bytes("c", "k").await, ErrorKind::Closed);
    expect_kind(s.put("c", "k", &1).await, ErrorKind::Closed);
    expect_kind(s.delete("c", "k").await, ErrorKind::Closed);
    Ok(())
}

async fn close_twice_is_fine(fx: Fixture) -> CaseResult {
    fx.store().close().await?;
    fx.store().close().await?;
    Ok(())
}
