#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod ring;
mod store;

pub use config::MemcachedConfig;
pub use store::MemcachedStore;

/// The URL scheme of this store: `memcached://HOST:PORT[,HOST:PORT...]`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://127.0.0.1:11211", kv_store_memcached::SCHEME);
/// assert!(kv_store_memcached::MemcachedConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "memcached";
