//! The filetree store for kv (being written).
