//! The safetensors store for kv (being written).
