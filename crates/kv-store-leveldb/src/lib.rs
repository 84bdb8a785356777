#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
/// How entries map onto the engine's key space (shared with the other engine-backed stores).
pub use kv_engine::keys as format;
mod store;

pub use config::{LevelDbConfig, LevelDbStoreBuilder};
pub use store::LevelDbStore;

/// The rusty-leveldb crate this store is built on.
pub use rusty_leveldb;

/// The URL scheme of this store: `leveldb://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv", kv_store_leveldb::SCHEME);
/// assert!(kv_store_leveldb::LevelDbConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "leveldb";
