#![doc = include_str!("../README.md")]
// Unsafe code is denied, and forbidden in every module but `raw`, the wrapper over UnQLite's C
// API (the unqlite crate's own wrapper is unsound; see the module).
#![deny(unsafe_code)]

#[forbid(unsafe_code)]
mod config;
/// How entries map onto the engine's key space (shared with the other engine-backed stores).
pub use kv_engine::keys as format;
#[allow(unsafe_code)]
pub mod raw;
#[forbid(unsafe_code)]
mod store;

pub use config::{UnqliteConfig, UnqliteStoreBuilder};
pub use store::{MAX_COLLECTION_LEN, MAX_KEY_LEN, UnqliteStore};

/// The unqlite crate this store is built on.
pub use unqlite;

/// The URL scheme of this store: `unqlite://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://data/kv.db", kv_store_unqlite::SCHEME);
/// assert!(kv_store_unqlite::UnqliteConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "unqlite";
