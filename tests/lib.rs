//! Cross-crate tests of the kv workspace live in this package's test targets. The library only
//! carries the root README, so its examples are compiled by `cargo test --doc -p kv-tests`.
#![doc = include_str!("../README.md")]
