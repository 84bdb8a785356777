#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::NatsConfig;
pub use store::NatsStore;

/// The URL scheme of this store: `nats://[USER:PASS@]HOST:PORT[,HOST:PORT...]`. Also the
/// store's [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://127.0.0.1:4222", kv_store_nats::SCHEME);
/// assert!(kv_store_nats::NatsConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "nats";
