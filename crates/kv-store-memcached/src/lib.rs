//! The memcached store for kv (being written).
