//! The whole kv-conformance suite against the memory store.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("memory", || async {
        Ok(Arc::new(MemoryStore::new()) as DynStore)
    })
    .run()
}
