//! The whole conformance suite through the fallback layer (memory primary, memory fallback,
//! writes falling back too); the memory primary never fails, so every answer is the primary's.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::fallback::FallbackLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("fallback", || async {
        let layer = FallbackLayer::new(MemoryStore::new()).write_to_fallback(true);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
