//! The whole conformance suite through the prefix-collections layer, over a memory store that
//! also holds another prefix's collections and unprefixed ones.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, KvStoreExt};
use kv_layers::StoreLayerExt;
use kv_layers::prefix_collections::PrefixCollectionsLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("prefix-collections", || async {
        let shared = MemoryStore::new();
        // Neighbours the suite must never see (it lists collections, clears, destroys).
        shared.put("c", "neighbour", &0).await?;
        let other = shared.clone().with(PrefixCollectionsLayer::new("app_"));
        other.put("c", "k", &0).await?;
        Ok(Arc::new(shared.with(PrefixCollectionsLayer::new("app"))) as DynStore)
    })
    .run()
}
