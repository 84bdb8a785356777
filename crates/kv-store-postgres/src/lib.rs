//! The postgres store for kv (being written).
