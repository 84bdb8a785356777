#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;

pub use config::{DEFAULT_NAMESPACE, DEFAULT_TIMEOUT, Layout, RedisConfig, Tls};
pub use store::{MAX_VALUE_LEN, RedisStore};

/// The redis client crate this store is built on (for [`RedisStore::raw_command`]).
pub use redis;

/// The URL scheme of this store and its [`StoreInfo::kind`](kv_core::StoreInfo::kind):
/// `redis://`, plus `rediss://` (TLS), `redis+cluster://` and `rediss+cluster://`.
pub const SCHEME: &str = "redis";

/// The Valkey schemes (`valkey://`, `valkeys://`, `valkey+cluster://`): the same store, whose
/// kind is then `valkey`.
pub const SCHEME_VALKEY: &str = "valkey";

/// Every URL scheme this store opens.
pub const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "valkey",
    "valkeys",
    "valkey+cluster",
    "valkeys+cluster",
];
