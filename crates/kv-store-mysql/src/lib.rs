//! The mysql store for kv (being written).
