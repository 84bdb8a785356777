//! The whole conformance suite through the routing layer: the suite's most used collections
//! (`c`, `users`, the default collection) go to two other memory stores, the rest to the
//! default one; every case then crosses stores.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::routing::RoutingLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("routing", || async {
        let one: DynStore = Arc::new(MemoryStore::new());
        let two: DynStore = Arc::new(MemoryStore::new());
        let layer = RoutingLayer::new()
            .route("c", one.clone())
            .route("users", two.clone())
            .route("", one);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
