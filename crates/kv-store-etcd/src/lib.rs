#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::EtcdConfig;
pub use store::EtcdStore;

/// The URL scheme of this store: `etcd://[USER:PASS@]HOST:PORT[,HOST:PORT...]`. Also the
/// store's [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://127.0.0.1:2379", kv_store_etcd::SCHEME);
/// assert!(kv_store_etcd::EtcdConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "etcd";
