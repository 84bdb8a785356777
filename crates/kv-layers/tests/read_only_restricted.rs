//! The conformance suite through the read-only layer with the restriction on: the suite runs
//! its read-only cases (every write refused with ReadOnly naming the operation, misses stay
//! misses) and the cases that never write; the cases that write are skipped by the suite
//! because the capability says `read_only`.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::read_only::ReadOnlyLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("read-only", || async {
        Ok(Arc::new(MemoryStore::new().with(ReadOnlyLayer::new())) as DynStore)
    })
    .run()
}
