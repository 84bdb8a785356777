#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{
    DEFAULT_BUSY_TIMEOUT, MEMORY_PATH, SqliteConfig, SqliteStoreBuilder, Synchronous,
};
pub use store::SqliteStore;

/// The rusqlite crate this store is built on, for [`SqliteStore::with_connection`].
pub use rusqlite;

/// The URL scheme of this store: `sqlite://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.db", kv_store_sqlite::SCHEME);
/// assert!(kv_store_sqlite::SqliteConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "sqlite";
