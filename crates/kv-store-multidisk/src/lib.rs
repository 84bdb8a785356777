#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{Durability, MultiDiskConfig, MultiDiskStoreBuilder};
pub use store::MultiDiskStore;

/// The redb crate this store is built on, for [`MultiDiskStore::database`].
pub use redb;

/// The URL scheme of this store: `multidisk://DIR`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv", kv_store_multidisk::SCHEME);
/// assert!(kv_store_multidisk::MultiDiskConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "multidisk";
