//! The whole conformance suite through the cache layer: a memory store caching another memory
//! store (copies capped at a minute, so TTL cases see copies expire before or with entries).

use std::sync::Arc;
use std::time::Duration;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::cache::CacheLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("cache", || async {
        let layer = CacheLayer::new(MemoryStore::new()).max_ttl(Duration::from_secs(60));
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
