//! The jsonfile store for kv (being written).
