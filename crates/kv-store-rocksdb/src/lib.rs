#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
/// How entries map onto the engine's key space (shared with the other engine-backed stores).
pub use kv_engine::keys as format;
mod store;

pub use config::{RocksDbConfig, RocksDbStoreBuilder};
pub use store::RocksDbStore;

/// The rocksdb crate this store is built on.
pub use rocksdb;

/// The URL scheme of this store: `rocksdb://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv", kv_store_rocksdb::SCHEME);
/// assert!(kv_store_rocksdb::RocksDbConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "rocksdb";
