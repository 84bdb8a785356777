//! The etcd store for kv (being written).
