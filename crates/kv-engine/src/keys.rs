//! How entries map onto the engine's single, flat key space.
//!
//! # Keys
//!
//! | engine key | value |
//! |---|---|
//! | `0x00` `next_version` | the version counter's reserve, u64 little-endian |
//! | `0x01` · u32 big-endian length of the collection · collection · key | kv envelope + value |
//!
//! Collection and key are kept verbatim (UTF-8 bytes, no escaping). The length prefix makes
//! the mapping injective: two different `(collection, key)` pairs never give the same engine
//! key, and no collection's prefix ([`collection_prefix`]) is a prefix of another's. So a
//! collection is one contiguous key range, from its prefix up to (not including) its prefix
//! followed by `0xFF` — a byte that never occurs in UTF-8, so no key of the collection reaches
//! it ([`collection_end`]). Within a collection, keys sort by their UTF-8 bytes: the order of
//! kv's ordered scans. An empty collection name is resolved to the store's default collection
//! before it is mapped.
//!
//! # Values
//!
//! Every value is the native envelope of [`kv_core::envelope`] (magic `0xC1`, format `0x01`,
//! flags, then `expires_at`, `created_at` and `version` as 8-byte little-endian fields)
//! followed by the raw value: 19 bytes of header, 27 with a TTL. Bytes that are not an
//! envelope are reported as `ErrorKind::Corrupt`.
//!
//! # Versions
//!
//! Every write gets a version from a store-wide counter, for compare-and-swap. So that a
//! version is never handed out twice, not even after a crash, the meta key holds a reserve
//! that every version handed out is below; it is raised in blocks of [`VERSION_BLOCK`] in the
//! same atomic batch as the write that needs it. A reopened store starts at the reserve.

use kv_core::{Error, ErrorKind, Result};

/// The first byte of every data key.
pub const DATA_TAG: u8 = 0x01;

/// The first byte of every metadata key.
pub const META_TAG: u8 = 0x00;

/// The engine key of the version counter's reserve.
pub const META_NEXT_VERSION: &[u8] = b"\x00next_version";

/// How many versions the store reserves at once.
pub const VERSION_BLOCK: u64 = 1024;

/// The first engine key of the data range (every data key is at or above it).
pub const DATA_START: &[u8] = &[DATA_TAG];

/// The end of the data range (every data key is below it).
pub const DATA_END: &[u8] = &[DATA_TAG + 1];

/// The common prefix of every engine key of `collection` (already resolved: never empty).
///
/// ```
/// let p = kv_engine::keys::collection_prefix("ab");
/// assert_eq!(p, b"\x01\x00\x00\x00\x02ab");
/// ```
pub fn collection_prefix(collection: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + collection.len());
    push_prefix(&mut out, collection);
    out
}

fn push_prefix(out: &mut Vec<u8>, collection: &str) {
    out.push(DATA_TAG);
    // Collections longer than 4 GiB cannot be addressed; `data_key` callers check the length.
    let len = u32::try_from(collection.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(collection.as_bytes());
}

/// The engine key of `(collection, key)`.
///
/// ```
/// assert_eq!(kv_engine::keys::data_key("c", "k"), b"\x01\x00\x00\x00\x01ck");
/// assert_ne!(kv_engine::keys::data_key("a", "bc"), kv_engine::keys::data_key("ab", "c"));
/// ```
pub fn data_key(collection: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + collection.len() + key.len());
    push_prefix(&mut out, collection);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The exclusive end of the key range of the collection whose prefix is `prefix`.
///
/// ```
/// let p = kv_engine::keys::collection_prefix("c");
/// let end = kv_engine::keys::collection_end(&p);
/// assert!(kv_engine::keys::data_key("c", "\u{10FFFF}") < end);
/// ```
pub fn collection_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = Vec::with_capacity(prefix.len() + 1);
    end.extend_from_slice(prefix);
    end.push(0xFF);
    end
}

/// Splits an engine data key into `(collection, key)`; `None` if it is not a data key of this
/// format (or not UTF-8).
///
/// ```
/// let k = kv_engine::keys::data_key("users", "alice");
/// assert_eq!(kv_engine::keys::split_data_key(&k), Some(("users", "alice")));
/// assert_eq!(kv_engine::keys::split_data_key(b"\x00next_version"), None);
/// ```
pub fn split_data_key(raw: &[u8]) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix(&[DATA_TAG])?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let rest = &rest[4..];
    let collection = std::str::from_utf8(rest.get(..len)?).ok()?;
    let key = std::str::from_utf8(&rest[len..]).ok()?;
    Some((collection, key))
}

/// The key part of a data key whose collection prefix (of `prefix_len` bytes) is known.
pub fn key_of(raw: &[u8], prefix_len: usize) -> Result<&str> {
    let bytes = raw.get(prefix_len..).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::Corrupt,
            "a stored key is not UTF-8 (the store was written by something else)",
        )
    })
}

/// Checks that a collection name can be encoded.
pub fn check_collection(collection: &str) -> Result<()> {
    if u32::try_from(collection.len()).is_err() {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            "collection names are limited to 4 GiB - 1 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_never_collide() {
        let cases = [
            ("", ""),
            ("a", "b"),
            ("a::b", "c"),
            ("a", ":b::c"),
            ("é", "\0"),
            ("..", "/"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (c, k) in cases {
            let raw = data_key(c, k);
            assert_eq!(split_data_key(&raw), Some((c, k)));
            assert!(raw.as_slice() >= DATA_START && raw.as_slice() < DATA_END);
            let p = collection_prefix(c);
            assert!(raw.starts_with(&p) && raw < collection_end(&p));
            assert!(seen.insert(raw));
        }
        assert!(META_NEXT_VERSION < DATA_START);
    }
}
