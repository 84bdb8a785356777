//! Cross-crate tests of the kv workspace live in this package's test targets; the library is
//! empty.
