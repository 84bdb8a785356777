//! Helpers for the unit tests.

use futures_util::TryStreamExt;
use kv_core::{KvStore, KvStoreExt};

/// Every key of a collection, in scan order.
pub(crate) async fn keys<S: KvStore>(store: &S, collection: &str) -> Vec<String> {
    store.keys(collection).try_collect().await.unwrap()
}
