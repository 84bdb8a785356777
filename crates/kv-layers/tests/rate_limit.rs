//! The whole conformance suite through the rate limit layer, waiting mode, with a rate the
//! suite's bursts exceed (so operations really wait for slots) yet high enough to keep the run
//! short. Pacing and rejection are covered by the module's unit tests, in paused time.

use std::sync::Arc;
use std::time::Duration;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::rate_limit::RateLimitLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("rate_limit", || async {
        let layer = RateLimitLayer::new(20_000, Duration::from_secs(1)).burst(50);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
