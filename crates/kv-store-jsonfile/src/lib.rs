#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{Durability, JsonFileConfig, JsonFileStoreBuilder};
pub use store::JsonFileStore;

/// The URL scheme of this store: `jsonfile://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.json", kv_store_jsonfile::SCHEME);
/// assert!(kv_store_jsonfile::JsonFileConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "jsonfile";
