//! The whole conformance suite through the concurrency limit layer with 2 slots and no wait
//! bound, so the suite's concurrent cases queue for slots. The bound itself is covered by the
//! module's unit tests, in paused time.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::concurrency_limit::ConcurrencyLimitLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("concurrency_limit", || async {
        let layer = ConcurrencyLimitLayer::new(2);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
