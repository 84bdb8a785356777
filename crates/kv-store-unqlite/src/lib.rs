//! The unqlite store for kv (being written).
