//! The whole conformance suite through the timeout layer (a deadline far above any case).

use std::sync::Arc;
use std::time::Duration;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::timeout::TimeoutLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("timeout", || async {
        let layer = TimeoutLayer::new(Duration::from_secs(60));
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
