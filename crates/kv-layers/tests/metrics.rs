//! The whole conformance suite through the metrics layer, with a recorder installed (the layer
//! never changes results).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::metrics::MetricsLayer;
use kv_store_memory::MemoryStore;
use metrics_util::debugging::DebuggingRecorder;

fn main() {
    // The cases run on many threads, so a global recorder rather than a local one.
    if DebuggingRecorder::new().install().is_err() {
        eprintln!("metrics: a global recorder was already installed");
        std::process::exit(1);
    }
    let layer = MetricsLayer::new();
    layer.describe();
    Suite::new("metrics", move || {
        let layer = layer.clone();
        async move { Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore) }
    })
    .run()
}
