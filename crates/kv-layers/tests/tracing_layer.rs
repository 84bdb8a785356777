//! The whole conformance suite through the tracing layer (it never changes results).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::tracing_layer::TracingLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("tracing_layer", || async {
        Ok(
            Arc::new(MemoryStore::new().with(TracingLayer::new().record_value_sizes(true)))
                as DynStore,
        )
    })
    .run()
}
