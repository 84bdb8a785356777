#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{LogConfig, LogStoreBuilder};
pub use store::{LogStats, LogStore};

/// The URL scheme of this store: `log://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.log", kv_store_log::SCHEME);
/// assert!(kv_store_log::LogConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "log";
