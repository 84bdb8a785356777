#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, MysqlConfig};
pub use store::MysqlStore;

/// The sqlx crate this store is built on (for [`MysqlStore::pool`]).
pub use sqlx;

/// The URL scheme of this store: `mysql://user:password@host:port/database`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind). `mariadb://` is accepted too.
///
/// ```
/// let url = format!("{}://root@127.0.0.1:3306/kv", kv_store_mysql::SCHEME);
/// assert!(kv_store_mysql::MysqlConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "mysql";

/// Every scheme this store accepts.
pub const SCHEMES: &[&str] = &["mysql", "mariadb"];
