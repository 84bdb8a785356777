//! The whole conformance suite through the compression layer writing zstd (default level,
//! threshold 0, so every value goes through zstd; values that would not shrink are stored raw
//! with the 2-byte header), around the memory store.
//!
//! No corrupt hook, for the reason given in `tests/compression.rs`; corrupt zstd frames are
//! covered by the module's unit tests.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::compression::CompressionLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("compression-zstd", || async {
        let layer = CompressionLayer::new().zstd(0).threshold(0);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
