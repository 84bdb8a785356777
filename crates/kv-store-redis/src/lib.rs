//! The redis store for kv (being written).
