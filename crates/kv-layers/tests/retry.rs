//! The whole conformance suite through the retry layer (no error of the memory store is
//! temporary, so nothing is retried; every operation still goes through the layer).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::retry::RetryLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("retry", || async {
        Ok(Arc::new(MemoryStore::new().with(RetryLayer::new())) as DynStore)
    })
    .run()
}
