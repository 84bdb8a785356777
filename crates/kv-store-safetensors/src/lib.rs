#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
pub mod format;
mod store;
mod tensor;

pub use config::{Durability, MEMORY_PATH, Mode, SafetensorsConfig, SafetensorsStoreBuilder};
pub use store::{SafetensorsStore, export, export_bytes};
pub use tensor::{Dtype, Element, Tensor};

/// The safetensors crate this store is built on.
pub use safetensors;

/// The URL scheme of this store: `safetensors://PATH`. Also the store's
/// [`StoreInfo::kind`](kv_core::StoreInfo::kind).
///
/// ```
/// let url = format!("{}://model.safetensors", kv_store_safetensors::SCHEME);
/// assert!(kv_store_safetensors::SafetensorsConfig::from_url(&url).is_ok());
/// ```
pub const SCHEME: &str = "safetensors";
