//! The leveldb store for kv (being written).
