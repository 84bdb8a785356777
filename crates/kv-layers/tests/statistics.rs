//! The whole conformance suite through the statistics layer (it never changes results).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::statistics::StatisticsLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("statistics", || async {
        Ok(Arc::new(MemoryStore::new().with(StatisticsLayer::new())) as DynStore)
    })
    .run()
}
