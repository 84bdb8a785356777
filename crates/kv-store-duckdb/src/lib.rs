//! The duckdb store for kv (being written).
