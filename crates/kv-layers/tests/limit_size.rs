//! The whole conformance suite through the limit-size layer with a 16 MiB maximum: the suite's
//! value-limit case runs (a value one byte over is rejected with ValueTooLarge, naming the key)
//! and its 10 MiB values still fit.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::limit_size::LimitSizeLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("limit-size", || async {
        let layer = LimitSizeLayer::new().max(16 * 1024 * 1024);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
