#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocking;
mod open;

pub use kv_core::*;
pub use open::{open, schemes};

/// The handle returned by [`open`]: any store behind dynamic dispatch. Cheap to clone.
pub type Store = kv_core::DynStore;

/// The in-process store.
#[cfg(feature = "memory")]
pub mod memory {
    pub use kv_store_memory::*;
}

/// The redb file store.
#[cfg(feature = "disk")]
pub mod disk {
    pub use kv_store_disk::*;
}

/// The store that keeps nothing.
#[cfg(feature = "null")]
pub mod null {
    pub use kv_store_null::*;
}
