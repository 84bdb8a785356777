//! The whole conformance suite through the single-collection layer: every collection the suite
//! uses lives in one backing collection of the memory store, next to data the suite must
//! never see.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, KvStoreExt};
use kv_layers::StoreLayerExt;
use kv_layers::single_collection::SingleCollectionLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("single-collection", || async {
        let backend = MemoryStore::new();
        backend.put("neighbour", "k", &0).await?;
        Ok(Arc::new(backend.with(SingleCollectionLayer::new("single"))) as DynStore)
    })
    .run()
}
