//! The whole conformance suite through the single-flight layer (concurrent gets of one key
//! share a read; results are unchanged).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::single_flight::SingleFlightLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("single_flight", || async {
        Ok(Arc::new(MemoryStore::new().with(SingleFlightLayer::new())) as DynStore)
    })
    .run()
}
