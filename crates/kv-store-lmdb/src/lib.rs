#![doc = include_str!("../README.md")]
// heed marks opening an environment and resizing its map `unsafe`: those two calls (in
// store.rs, each with a `// SAFETY:` proof) are the only unsafe code of the crate.
#![deny(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{DEFAULT_MAP_SIZE, DEFAULT_MAX_READERS, LmdbConfig, LmdbStoreBuilder};
pub use store::LmdbStore;

/// The URL scheme of this store: `lmdb://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.lmdb", kv_store_lmdb::SCHEME);
/// assert!(kv_store_lmdb::LmdbConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "lmdb";
