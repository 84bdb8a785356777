//! The whole conformance suite through the logging layer, values logged (it never changes
//! results).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::logging::LoggingLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("logging", || async {
        let layer = LoggingLayer::new().log_values(true);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
