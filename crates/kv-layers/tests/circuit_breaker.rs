//! The whole conformance suite through the circuit breaker layer (default threshold and
//! cool-down; the memory store never fails, so the circuit stays closed and every operation
//! reaches the store). Opening, failing fast and trials are covered by the module's unit tests.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::circuit_breaker::CircuitBreakerLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("circuit_breaker", || async {
        let layer = CircuitBreakerLayer::new();
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
