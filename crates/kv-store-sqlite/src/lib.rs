//! The sqlite store for kv (being written).
