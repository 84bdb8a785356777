//! The whole conformance suite through the TTL clamp layer (a minimum below every TTL the
//! suite uses, no maximum, no default: a maximum or a default changes what the suite checks,
//! so those are unit-tested in the module).

use std::sync::Arc;
use std::time::Duration;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::ttl_clamp::TtlClampLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("ttl-clamp", || async {
        let layer = TtlClampLayer::new().min(Duration::from_millis(100));
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
