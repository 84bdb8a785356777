#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{DiskConfig, DiskStoreBuilder, Durability};
pub use store::DiskStore;

/// The redb crate this store is built on, for [`DiskStore::database`] and
/// [`format::data_table`].
pub use redb;

/// The URL scheme of this store: `redb://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.redb", kv_store_disk::SCHEME);
/// assert!(kv_store_disk::DiskConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "redb";

/// The alias scheme of this store: `disk://PATH` opens the same store as `redb://PATH`.
///
/// ```
/// let url = format!("{}://data/kv.redb", kv_store_disk::SCHEME_ALIAS);
/// assert!(kv_store_disk::DiskConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME_ALIAS: &str = "disk";
