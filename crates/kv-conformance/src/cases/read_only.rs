//! Read-only stores: every write is refused with `ReadOnly` and its context, reads still work.
//! These cases also run on writable stores where they make sense (misses are misses).

use std::time::Duration;

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt, Operation, PutOptions};

use super::collect;
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("read_only", writes_are_refused_with_context, ReadOnly),
        case!("read_only", misses_are_misses, ReadOnlySafe),
    ]
}

fn refused<T: std::fmt::Debug>(r: kv_core::Result<T>, op: Operation) {
    match r {
        Ok(v) => panic!("{op:?} on a read-only store returned Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ReadOnly, "{op:?}: {e}");
            assert_eq!(
                e.operation(),
                Some(op),
                "the error names the operation: {e}"
            );
        }
    }
}

async fn writes_are_refused_with_context(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let v = Bytes::from_static(b"1");
    refused(s.put_bytes("c", "k", v.clone()).await, Operation::Put);
    refused(
        s.put_opts(
            "c",
            "k",
            v.clone(),
            PutOptions::default().with_ttl(Duration::from_secs(60)),
        )
        .await,
        Operation::Put,
    );
    refused(
        s.put_many_opts("c", &[("a", v.clone())], Default::default())
            .await,
        Operation::PutMany,
    );
    refused(s.delete("c", "k").await, Operation::Delete);
    refused(s.delete_many("c", &["a", "b"]).await, Operation::DeleteMany);
    refused(s.clear("c").await, Operation::Clear);
    refused(s.destroy().await, Operation::Destroy);
    // Reads still work after the refusals.
    assert_eq!(s.get_bytes("c", "never-written").await?, None);
    Ok(())
}

async fn misses_are_misses(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let c = "kv-conformance-never-written";
    assert_eq!(s.get_bytes(c, "k").await?, None);
    assert_eq!(s.get_many::<i32>(c, &["a", "b"]).await?, vec![None, None]);
    assert_eq!(s.ttl(c, "k").await?, None);
    assert!(!s.exists(c, "k").await?);
    if fx.cap().scan {
        assert!(collect(s.keys(c)).await?.is_empty());
    }
    Ok(())
}
