//! The whole conformance suite through the versioning layer, around the memory store.
//!
//! No corrupt hook: a value that does not carry the layer's tag is a miss by design, not an
//! error; the module's unit tests cover foreign and cut-short values.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::versioning::VersioningLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("versioning", || async {
        let layer = VersioningLayer::new("v1")?;
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
