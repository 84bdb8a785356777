//! The whole conformance suite through the compression layer with threshold 0, so every value
//! goes through LZ4 (values that would not shrink, like most short ones, are stored raw with
//! the 2-byte header), around the memory store.
//!
//! No corrupt hook: the suite's corrupt-bytes cases expect TTL reads to fail too, which holds
//! for a store's metadata envelope but not for this layer (a garbled value leaves the entry's
//! TTL intact, and `ttl` does not read the value). Corrupt values are covered by the module's
//! unit tests (get, get_many, scans, overwrite and delete).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::compression::CompressionLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("compression", || async {
        let layer = CompressionLayer::new().threshold(0);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
