#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
mod store;

pub use config::{MemoryConfig, MemoryStoreBuilder};
pub use store::MemoryStore;

/// The URL scheme of this store: `memory://`.
pub const SCHEME: &str = "memory";
