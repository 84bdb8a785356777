//! The log store for kv (being written).
