//! The whole conformance suite through the prefix-keys layer, over a memory store that also
//! holds another prefix's data and unprefixed keys in the same collections.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, KvStoreExt};
use kv_layers::StoreLayerExt;
use kv_layers::prefix_keys::PrefixKeysLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("prefix-keys", || async {
        let shared = MemoryStore::new();
        // Neighbours the suite must never see (it lists keys, collections, clears, destroys).
        shared.put("c", "neighbour", &0).await?;
        let other = shared.clone().with(PrefixKeysLayer::new("app_"));
        other.put("c", "k", &0).await?;
        Ok(Arc::new(shared.with(PrefixKeysLayer::new("app"))) as DynStore)
    })
    .run()
}
