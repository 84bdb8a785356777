#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod search;
mod store;
mod tls;

pub use config::{
    DEFAULT_POOL_SIZE, DEFAULT_SHARED_CONNECTIONS, DEFAULT_TIMEOUT, PostgresConfig, SslMode,
};
pub use store::PostgresStore;

/// The tokio-postgres crate this store is built on.
pub use tokio_postgres;

/// The URL scheme of this store: `postgres://user:password@host:port/database`. Also the
/// store's [`StoreInfo::kind`](kv_core::StoreInfo::kind). `postgresql://` is accepted too.
///
/// ```
/// let url = format!("{}://postgres@127.0.0.1:5432/postgres", kv_store_postgres::SCHEME);
/// assert!(kv_store_postgres::PostgresConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "postgres";

/// Every scheme this store accepts.
pub const SCHEMES: &[&str] = &["postgres", "postgresql"];
