//! Tower-style layers for [kv](https://docs.rs/kv) stores.
//!
//! A layer wraps any [`KvStore`] into another `KvStore` that changes one thing: it clamps
//! TTLs, prefixes keys, rejects writes, counts hits, retries, ... Each module holds
//! one layer: its configuration `XLayer` (a [`Layer`]) and the wrapped store `X<S>`.
//!
//! Layers compose statically, with [`StoreLayerExt::with`]: the stack below is one concrete
//! type, monomorphised, with no boxing. The last `.with` is the outermost layer, the first one
//! an operation goes through.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use kv_core::{DynStore, KvStoreExt};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::prefix_keys::PrefixKeysLayer;
//! use kv_layers::ttl_clamp::TtlClampLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let stack = MemoryStore::new()
//!     .with(TtlClampLayer::new().max(Duration::from_secs(3600)))
//!     .with(PrefixKeysLayer::new("app"));
//! stack.put("users", "alice", &30).await?;
//!
//! // Erase the whole stack once, to store it or pass it around as one handle type.
//! let store: DynStore = Arc::new(stack);
//! assert_eq!(store.get::<u32>("users", "alice").await?, Some(30));
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```
//!
//! Layers apply to a [`DynStore`](kv_core::DynStore) too (it is itself a `KvStore`), e.g. to
//! the handle `kv::open(url)` returns.
//!
//! Unlike py-key-value's wrappers, layers forward scans, `collections`, `clear`, `destroy` and
//! `cull`, translating names where they rename them: a prefix layer strips its prefix from scan
//! results and collection lists, and one prefix's data is invisible through another prefix.
//!
//! | module | what it does |
//! |---|---|
//! | [`ttl_clamp`] | minimum, maximum and default TTL |
//! | [`prefix_keys`] | a namespace prefix on every key |
//! | [`prefix_collections`] | a namespace prefix on every collection |
//! | [`single_collection`] | every collection stored in one backing collection |
//! | [`read_only`] | rejects (or ignores) every write |
//! | [`default_value`] | a default value returned for misses |
//! | [`limit_size`] | rejects values above (or below) a size |
//! | [`compression`] | LZ4 (default) or zstd compression of values, readable alongside uncompressed ones |
//! | [`encryption`] | XChaCha20-Poly1305 (default) or AES-256-GCM encryption of values bound to their collection and key, with key rotation |
//! | [`versioning`] | a schema-version tag on every value; other versions read as missing |
//! | [`statistics`] | hit, miss, put, delete and error counters per collection |
//! | [`tracing_layer`] | a `tracing` span per operation, with its outcome; a warning per failure |
//! | [`metrics`] | operation counts, outcomes, durations, hits and misses via the `metrics` facade |
//! | [`logging`] | one `tracing` log event per operation (outcome, timing; values only on request) |
//! | [`timeout`] | a deadline per operation |
//! | [`retry`] | exponential backoff with jitter on temporary errors |
//! | [`circuit_breaker`] | fails fast while a store keeps failing, with a trial call after a cool-down |
//! | [`rate_limit`] | a token bucket: operations wait for (or are refused) a slot beyond a rate |
//! | [`concurrency_limit`] | a bulkhead: at most `n` operations in flight, the others wait (for a bounded time) |
//! | [`chaos`] | injected errors and latency, reproducible with a seed, for testing failure handling |
//! | [`fallback`] | a secondary store when the primary fails |
//! | [`cache`] | a read-through cache in another store, invalidated by writes |
//! | [`single_flight`] | one load (and one read) per key at a time: concurrent callers share its result |
//! | [`routing`] | collections routed to different stores |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod forward;
#[macro_use]
mod around;
#[cfg(test)]
mod test_tracing;
#[cfg(test)]
mod testutil;
mod util;

pub mod cache;
pub mod chaos;
pub mod circuit_breaker;
pub mod compression;
pub mod concurrency_limit;
pub mod default_value;
pub mod encryption;
pub mod fallback;
pub mod limit_size;
pub mod logging;
pub mod metrics;
pub mod prefix_collections;
pub mod prefix_keys;
pub mod rate_limit;
pub mod read_only;
pub mod retry;
pub mod routing;
pub mod single_collection;
pub mod single_flight;
pub mod statistics;
pub mod timeout;
pub mod tracing_layer;
pub mod ttl_clamp;
pub mod versioning;

use kv_core::{KvStore, Layer};

/// `.with(layer)` on every store, so stacks read from the inside out:
/// `MemoryStore::new().with(A).with(B)` is `B` wrapping `A` wrapping the memory store.
///
/// ```
/// use kv_layers::StoreLayerExt;
/// use kv_layers::read_only::ReadOnlyLayer;
/// use kv_store_memory::MemoryStore;
///
/// let store = MemoryStore::new().with(ReadOnlyLayer::new());
/// # let _ = store;
/// ```
pub trait StoreLayerExt: KvStore + Sized {
    /// Wraps this store in `layer`.
    fn with<L: Layer<Self>>(self, layer: L) -> L::Store {
        layer.layer(self)
    }
}

impl<S: KvStore> StoreLayerExt for S {}
