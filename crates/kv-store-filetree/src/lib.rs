#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{Durability, FileTreeConfig, FileTreeStoreBuilder};
pub use store::FileTreeStore;

/// The URL scheme of this store: `filetree://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/tree", kv_store_filetree::SCHEME);
/// assert!(kv_store_filetree::FileTreeConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "filetree";
