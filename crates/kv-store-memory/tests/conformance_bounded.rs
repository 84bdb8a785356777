//! The whole kv-conformance suite against a bounded memory store (LRU, 500 entries per
//! collection): it runs the eviction cases the unbounded store skips.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("memory-bounded", || async {
        let store = MemoryStore::builder()
            .max_entries_per_collection(500)
            .build();
        Ok(Arc::new(store) as DynStore)
    })
    .run()
}
