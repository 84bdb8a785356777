//! The whole conformance suite through the chaos layer injecting latency only (0 to 1 ms per
//! operation, in real time), around the memory store: delays change no result, including the
//! suite's TTL and concurrency cases.

use std::sync::Arc;
use std::time::Duration;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::chaos::ChaosLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("chaos-latency", || async {
        let layer = ChaosLayer::new()
            .latency_between(Duration::ZERO, Duration::from_millis(1))
            .seed(2);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
