#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod search;
mod store;

pub use config::{DuckDbConfig, DuckDbStoreBuilder, Location, MEMORY};
pub use store::DuckDbStore;

/// The duckdb crate this store is built on, for [`DuckDbStore::with_connection`].
pub use duckdb;

/// The URL scheme of this store: `duckdb://PATH` or `duckdb://:memory:`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.duckdb", kv_store_duckdb::SCHEME);
/// assert!(kv_store_duckdb::DuckDbConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "duckdb";
