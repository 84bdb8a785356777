//! The nats store for kv (being written).
