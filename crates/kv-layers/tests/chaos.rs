//! The whole conformance suite through the chaos layer with an error rate of 0 (every
//! operation takes its draw and passes), around the memory store. Injected errors, their rate
//! and a retry layer recovering from them are covered by the module's unit tests; latency by
//! `tests/chaos_latency.rs`.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::chaos::ChaosLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("chaos", || async {
        let layer = ChaosLayer::new().error_rate(0.0).seed(1);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
