//! The rocksdb store for kv (being written).
