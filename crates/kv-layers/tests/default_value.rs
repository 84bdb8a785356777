//! The whole conformance suite through the default-value layer, with a default configured for
//! a collection the suite never uses: every operation goes through the layer, and every miss
//! the suite checks must stay a miss. A global default would turn the suite's misses into
//! values by design, so that behaviour is unit-tested in the module instead.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::default_value::DefaultValueLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("default-value", || async {
        let layer = DefaultValueLayer::new().collection("kv-layers-defaults", &b"{}"[..]);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
