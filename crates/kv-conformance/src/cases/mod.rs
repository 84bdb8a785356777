//! The cases, one module per theme. Each case is an `async fn(Fixture) -> CaseResult`
//! registered with [`case!`] and the needs that gate it.

use std::fmt::Debug;

use kv_core::{Bytes, ErrorKind, Result};

/// Registers `async fn $f(fx: Fixture) -> CaseResult` as case `$group::$f`.
macro_rules! case {
    ($group:literal, $f:ident $(, $need:ident)* $(,)?) => {
        crate::Case {
            name: concat!($group, "::", stringify!($f)),
            needs: &[$(crate::Need::$need),*],
            run: |fx| Box::pin($f(fx)),
        }
    };
}

mod base;
mod batch;
mod collections;
mod concurrency;
mod conditional;
mod data;
mod dict;
mod errors;
mod keys;
mod persistence;
mod read_only;
mod scan;
mod search;
mod ttl;
mod typed;
mod values;

pub(crate) fn all() -> Vec<crate::Case> {
    let mut all = Vec::new();
    for group in [
        base::cases(),
        data::cases(),
        batch::cases(),
        ttl::cases(),
        conditional::cases(),
        scan::cases(),
        search::cases(),
        collections::cases(),
        keys::cases(),
        values::cases(),
        dict::cases(),
        concurrency::cases(),
        typed::cases(),
        errors::cases(),
        persistence::cases(),
        read_only::cases(),
    ] {
        all.extend(group);
    }
    all
}

/// JSON bytes of a value.
pub(crate) fn json(v: serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&v).expect("JSON values always serialize"))
}

/// Asserts that `r` is an error of `kind`, with a message naming what came instead.
#[track_caller]
pub(crate) fn expect_kind<T: Debug>(r: Result<T>, kind: ErrorKind) {
    match r {
        Ok(v) => panic!("expected a {kind} error, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "expected a {kind} error, got: {e}"),
    }
}

/// Collects a stream of results into a vector, failing on the first error.
pub(crate) async fn collect<T>(s: impl futures_util::Stream<Item = Result<T>>) -> Result<Vec<T>> {
    use futures_util::TryStreamExt;
    s.try_collect().await
}
