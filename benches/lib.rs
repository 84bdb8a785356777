//! Shared helpers of the benchmarks (`cargo bench -p kv-benches`, or `cargo xtask bench`,
//! which also regenerates the tables of BENCHMARKS.md).

use bytes::Bytes;

/// `n` keys `key-000000`, `key-000001`, ...
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key-{i:06}")).collect()
}

/// A value of `size` bytes.
pub fn value(size: usize) -> Bytes {
    Bytes::from(
        (0..size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    )
}
