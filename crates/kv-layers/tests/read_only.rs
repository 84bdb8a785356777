//! The whole conformance suite through the read-only layer with its switch off: every
//! operation goes through the layer's code paths and must behave exactly like the memory
//! store. With the restriction on, every case that writes would fail by design, so the
//! restricted behaviour is unit-tested in the module instead.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::read_only::{ReadOnlyLayer, ReadOnlySwitch};
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("read-only(switch off)", || async {
        let layer = ReadOnlyLayer::new().switch(ReadOnlySwitch::new(false));
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
