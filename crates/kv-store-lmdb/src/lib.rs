//! The lmdb store for kv (being written).
