//! How entries map to LMDB: one database for every collection, a length-prefixed composite
//! key, the native kv envelope as value.
//!
//! # Environment
//!
//! An LMDB environment is a directory holding `data.mdb` and `lock.mdb`. The store uses two
//! named databases in it: [`ENTRIES_DB`] (every entry) and [`META_DB`] (`format` → u64 LE
//! [`FORMAT_VERSION`], `next_version` → u64 LE, the next version to hand out). Other named
//! databases of the environment are never touched.
//!
//! # Keys
//!
//! The *composite* of a pair is `u32 big-endian byte length of the collection ++ collection
//! ++ key` (UTF-8). The length prefix makes the mapping injective — `("a", "b:c")` and
//! `("a:b", "c")` differ in their first four bytes — and keeps each collection's entries
//! together, in key byte order, which is the order of kv scans.
//!
//! LMDB keys are at most 511 bytes, so:
//!
//! - a composite shorter than [`LONG_KEY_LEN`] (480) bytes **is** the LMDB key, and the value is
//!   the envelope;
//! - a longer composite is stored under `composite[..448] ++ SHA-256(composite)` — exactly
//!   [`LONG_KEY_LEN`] bytes, so the length of an LMDB key says which form it has — and the
//!   value is `u32 little-endian composite length ++ composite ++ envelope`. Reads compare the
//!   stored composite with the one asked for, so even a SHA-256 collision could never return
//!   or overwrite another pair's entry (such a put would fail instead).
//!
//! Keys and collections therefore have no length limit. A long composite sorts by its hash
//! among the LMDB keys that share its first 448 bytes; such keys are contiguous, and scans read
//! each run of them whole and sort it by the real key, so scans stay in key order. (A
//! collection whose name is 444 bytes or longer is a single such run: its scans sort the whole
//! collection on each page.)
//!
//! # Values
//!
//! The native envelope of [`kv_core::envelope`] (magic `0xC1`, format `0x01`, flags, then
//! `expires_at`, `created_at`, `version` as little-endian 8-byte fields) followed by the raw
//! value: 19 bytes of header, 27 with a TTL.
//!
//! # Versions
//!
//! Every write transaction that stores entries takes their versions from `next_version` and
//! raises it in the same transaction. LMDB has one writer at a time across every process of the
//! environment, so versions are unique among all of them and never reused.

use sha2::{Digest, Sha256};

/// The named database holding every entry.
pub const ENTRIES_DB: &str = "kv:entries";

/// The named database holding the format version and the version counter.
pub const META_DB: &str = "kv:meta";

/// The on-disk format version this crate reads and writes.
///
/// ```
/// assert_eq!(kv_store_lmdb::format::FORMAT_VERSION, 1);
/// ```
pub const FORMAT_VERSION: u64 = 1;

/// The length of every LMDB key of the long form; shorter LMDB keys are composites.
pub const LONG_KEY_LEN: usize = 480;

/// How many bytes of a long composite its LMDB key keeps.
pub const LONG_KEY_HEAD: usize = LONG_KEY_LEN - 32;

pub(crate) const META_FORMAT: &[u8] = b"format";
pub(crate) const META_NEXT_VERSION: &[u8] = b"next_version";

/// The bytes every composite of `collection` starts with.
///
/// ```
/// assert_eq!(kv_store_lmdb::format::collection_header("ab"), b"\0\0\0\x02ab");
/// ```
pub fn collection_header(collection: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + collection.len());
    push_header(&mut out, collection);
    out
}

fn push_header(out: &mut Vec<u8>, collection: &str) {
    // A collection longer than 4 GiB cannot be sent to a store anyway; saturate rather than
    // wrap so that it can never alias a shorter name.
    let len = u32::try_from(collection.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(collection.as_bytes());
}

/// The composite of a pair.
///
/// ```
/// assert_eq!(kv_store_lmdb::format::composite("c", "k"), b"\0\0\0\x01ck");
/// ```
pub fn composite(collection: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + collection.len() + key.len());
    push_header(&mut out, collection);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The LMDB key of a composite: itself, or its head and SHA-256 when it is long.
///
/// ```
/// use kv_store_lmdb::format::{composite, lmdb_key, LONG_KEY_LEN};
///
/// assert_eq!(lmdb_key(&composite("c", "k")), composite("c", "k"));
/// assert_eq!(lmdb_key(&composite("c", &"k".repeat(1500))).len(), LONG_KEY_LEN);
/// ```
pub fn lmdb_key(composite: &[u8]) -> Vec<u8> {
    if !is_long(composite) {
        return composite.to_vec();
    }
    let mut out = Vec::with_capacity(LONG_KEY_LEN);
    out.extend_from_slice(&composite[..LONG_KEY_HEAD]);
    out.extend_from_slice(&Sha256::digest(composite));
    out
}

/// True if the composite is stored in the long form.
pub(crate) fn is_long(composite: &[u8]) -> bool {
    composite.len() >= LONG_KEY_LEN
}

/// The bytes a scan seeks to, to find every composite at or after `composite`.
pub(crate) fn seek_key(composite: &[u8]) -> &[u8] {
    &composite[..composite.len().min(LONG_KEY_HEAD)]
}

/// The LMDB value of an entry: the envelope and value, behind the composite for long keys.
pub(crate) fn lmdb_value(composite: &[u8], envelope_len: usize) -> Vec<u8> {
    if !is_long(composite) {
        return Vec::with_capacity(envelope_len);
    }
    let mut out = Vec::with_capacity(4 + composite.len() + envelope_len);
    let len = u32::try_from(composite.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(composite);
    out
}

/// An LMDB entry taken apart: its composite and its envelope bytes.
pub(crate) struct Stored<'a> {
    pub composite: &'a [u8],
    pub envelope: &'a [u8],
}

/// Splits an LMDB entry into composite and envelope. `Err` with a message if the long form's
/// stored composite is cut short or does not match its key.
pub(crate) fn split<'a>(key: &'a [u8], value: &'a [u8]) -> Result<Stored<'a>, &'static str> {
    if key.len() != LONG_KEY_LEN {
        return Ok(Stored {
            composite: key,
            envelope: value,
        });
    }
    let Some((len, rest)) = value.split_first_chunk::<4>() else {
        return Err("a long key's entry is shorter than its length field");
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err("a long key's entry is shorter than its stored key");
    }
    let (composite, envelope) = rest.split_at(len);
    if !is_long(composite) || lmdb_key(composite) != key {
        return Err("a long key's stored key does not match its LMDB key");
    }
    Ok(Stored {
        composite,
        envelope,
    })
}

/// The collection and key of a composite.
pub(crate) fn parse_composite(composite: &[u8]) -> Result<(&str, &str), &'static str> {
    let Some((len, rest)) = composite.split_first_chunk::<4>() else {
        return Err("an LMDB key is shorter than its collection length");
    };
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err("an LMDB key is shorter than its collection name");
    }
    let (c, k) = rest.split_at(len);
    match (std::str::from_utf8(c), std::str::from_utf8(k)) {
        (Ok(c), Ok(k)) => Ok((c, k)),
        _ => Err("an LMDB key is not UTF-8"),
    }
}

/// The smallest byte string above every string that starts with `prefix` (`None`: no bound).
pub(crate) fn bytes_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composites_never_collide_and_round_trip() {
        let pairs = [
            ("a", "b:c"),
            ("a:b", "c"),
            ("", "ab"),
            ("ab", ""),
            ("a\0", "b"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (c, k) in pairs {
            let comp = composite(c, k);
            assert!(seen.insert(comp.clone()));
            assert_eq!(parse_composite(&comp).unwrap(), (c, k));
        }
    }

    #[test]
    fn long_keys_round_trip() {
        let k = "é".repeat(800);
        let comp = composite("c", &k);
        let key = lmdb_key(&comp);
        assert_eq!(key.len(), LONG_KEY_LEN);
        let mut value = lmdb_value(&comp, 3);
        value.extend_from_slice(b"env");
        let s = split(&key, &value).unwrap();
        assert_eq!(s.composite, &comp[..]);
        assert_eq!(s.envelope, b"env");
        assert!(split(&key, &value[..10]).is_err());
        // The longest short composite and the shortest long one.
        let short = composite("c", &"x".repeat(LONG_KEY_LEN - 6));
        assert_eq!(short.len(), LONG_KEY_LEN - 1);
        assert_eq!(lmdb_key(&short), short);
        let long = composite("c", &"x".repeat(LONG_KEY_LEN - 5));
        assert_eq!(lmdb_key(&long).len(), LONG_KEY_LEN);
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(bytes_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(bytes_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(bytes_upper_bound(b"\xff"), None);
    }
}
