//! The multidisk store for kv (being written).
