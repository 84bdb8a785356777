#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocking;
mod open;

pub use kv_core::*;
pub use open::{open, schemes};

/// Tower-style layers (TTL clamp, key and collection prefixes, read-only, retry, timeout,
/// fallback, routing, statistics, ...): `store.with(layer)` composes them statically, and they
/// work on the dyn [`Store`] too.
///
/// ```
/// use kv::layers::{StoreLayerExt, prefix_keys::PrefixKeysLayer};
///
/// let store = kv::memory::MemoryStore::new().with(PrefixKeysLayer::new("app"));
/// # let _ = store;
/// ```
pub use kv_layers as layers;

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

/// One redb file per collection.
#[cfg(feature = "multidisk")]
pub mod multidisk {
    pub use kv_store_multidisk::*;
}

/// Plain files, one per entry.
#[cfg(feature = "filetree")]
pub mod filetree {
    pub use kv_store_filetree::*;
}

/// One human-readable JSON file.
#[cfg(feature = "jsonfile")]
pub mod jsonfile {
    pub use kv_store_jsonfile::*;
}

/// An append-only log with an in-memory index.
#[cfg(feature = "log")]
pub mod log {
    pub use kv_store_log::*;
}

/// SQLite.
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use kv_store_sqlite::*;
}

/// LMDB.
#[cfg(feature = "lmdb")]
pub mod lmdb {
    pub use kv_store_lmdb::*;
}

/// LevelDB (pure Rust).
#[cfg(feature = "leveldb")]
pub mod leveldb {
    pub use kv_store_leveldb::*;
}

/// RocksDB.
#[cfg(feature = "rocksdb")]
pub mod rocksdb {
    pub use kv_store_rocksdb::*;
}

/// UnQLite.
#[cfg(feature = "unqlite")]
pub mod unqlite {
    pub use kv_store_unqlite::*;
}

/// DuckDB.
#[cfg(feature = "duckdb")]
pub mod duckdb {
    pub use kv_store_duckdb::*;
}

/// Tensors in `.safetensors` files.
#[cfg(feature = "safetensors")]
pub mod safetensors {
    pub use kv_store_safetensors::*;
}

/// Redis and Valkey (standalone, TLS, Cluster).
#[cfg(feature = "redis")]
pub mod redis {
    pub use kv_store_redis::*;
}

/// Memcached.
#[cfg(feature = "memcached")]
pub mod memcached {
    pub use kv_store_memcached::*;
}

/// NATS JetStream KV.
#[cfg(feature = "nats")]
pub mod nats {
    pub use kv_store_nats::*;
}

/// etcd v3.
#[cfg(feature = "etcd")]
pub mod etcd {
    pub use kv_store_etcd::*;
}

/// PostgreSQL.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use kv_store_postgres::*;
}

/// MySQL and MariaDB.
#[cfg(feature = "mysql")]
pub mod mysql {
    pub use kv_store_mysql::*;
}
