//! How entries map onto memcached items.
//!
//! # Item keys
//! `PREFIX:ESC(collection):ESC(key)`, where `ESC` keeps the bytes `0x21..=0x7E` except `%` and
//! `:` and writes every other byte of the UTF-8 text as `%XX` (upper-case hex). The two
//! separators are the only unescaped `:` after the prefix, so two different
//! `(collection, key)` pairs never share an item key.
//!
//! When that is longer than memcached's 250-byte limit, the item key is the hashed form
//! `PREFIX:#HEX`, with `HEX` the SHA-256 (64 hex digits) of
//! `u64-le(len(collection)) ‖ collection ‖ key`. It has one `:` after the prefix, so it never
//! equals a direct key. A hashed item also carries the full collection and key in its value
//! (below), and a read checks them: a hash collision reads as a miss, never as another
//! entry's value.
//!
//! # Item values
//! The kv native envelope ([`kv_core::envelope`], with `expires_at` and `created_at`)
//! followed, for hashed items only, by `u32-le(len(collection)) ‖ collection ‖
//! u32-le(len(key)) ‖ key`, then the value bytes. Item flags are 0. The entry's version is
//! memcached's CAS unique of the item.
//!
//! # Expiry
//! The envelope's `expires_at` is exact (microseconds) and checked on every read. The item's
//! memcached `exptime` is `ceil(ttl) + 1` seconds (memcached's clock ticks in whole seconds
//! and may expire an item up to a second early, so the extra second keeps the native expiry
//! from ever cutting a TTL short); above 30 days it is sent as an absolute Unix time, as
//! memcached requires, and beyond 2^31-1 as 0 (no native expiry: the envelope still hides
//! the entry once it has expired).

use std::time::Duration;

use kv_core::envelope::{self, Meta};
use kv_core::{Bytes, Error, ErrorKind, Result, Timestamp};
use sha2::{Digest, Sha256};

/// Memcached's key length limit (bytes).
pub const MAX_ITEM_KEY: usize = 250;

/// Relative `exptime` values above this are taken by memcached as absolute Unix times.
pub const RELATIVE_EXPTIME_MAX: u64 = 30 * 24 * 3600;

/// The memcached key of an entry, and whether it is the hashed form.
pub fn item_key(prefix: &str, collection: &str, key: &str) -> (String, bool) {
    let mut out = Vec::with_capacity(prefix.len() + collection.len() + key.len() + 2);
    out.extend_from_slice(prefix.as_bytes());
    out.push(b':');
    escape_into(collection, &mut out);
    out.push(b':');
    escape_into(key, &mut out);
    if out.len() <= MAX_ITEM_KEY {
        // The prefix is checked to be printable ASCII, the escapes are ASCII.
        if let Ok(out) = String::from_utf8(out) {
            return (out, false);
        }
    }
    let mut h = Sha256::new();
    h.update((collection.len() as u64).to_le_bytes());
    h.update(collection.as_bytes());
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(prefix.len() + 66);
    out.push_str(prefix);
    out.push_str(":#");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    (out, true)
}

/// Printable ASCII except `%` and `:` is kept; everything else becomes `%XX`.
fn escape_into(s: &str, out: &mut Vec<u8>) {
    kv_core::format::percent::push_escaped(out, s, |b| {
        (0x21..=0x7E).contains(&b) && b != b'%' && b != b':'
    });
}

/// Encodes an item value.
pub fn encode(meta: &Meta, hashed: Option<(&str, &str)>, value: &[u8]) -> Vec<u8> {
    let extra = hashed.map_or(0, |(c, k)| 8 + c.len() + k.len());
    let mut out = Vec::with_capacity(meta.header_len() + extra + value.len());
    envelope::encode_into(meta, &[], &mut out);
    if let Some((c, k)) = hashed {
        for part in [c, k] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.extend_from_slice(value);
    out
}

/// Decodes an item value. `Ok(None)` if a hashed item belongs to another `(collection, key)`
/// (a SHA-256 collision).
pub fn decode(raw: Bytes, hashed: Option<(&str, &str)>) -> Result<Option<(Meta, Bytes)>> {
    let (meta, mut pos) = envelope::decode_meta(&raw)?;
    if let Some((c, k)) = hashed {
        for part in [c, k] {
            let len_bytes = raw.get(pos..pos + 4).ok_or_else(corrupt)?;
            let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]])
                as usize;
            let stored = raw.get(pos + 4..pos + 4 + len).ok_or_else(corrupt)?;
            if stored != part.as_bytes() {
                return Ok(None);
            }
            pos += 4 + len;
        }
    }
    Ok(Some((meta, raw.slice(pos..))))
}

fn corrupt() -> Error {
    Error::new(
        ErrorKind::Corrupt,
        "memcached item cut short inside its key record",
    )
}

/// The memcached `exptime` for a TTL starting at `now`: 0 for none.
pub fn exptime(now: Timestamp, ttl: Option<Duration>) -> u64 {
    let Some(ttl) = ttl else { return 0 };
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .saturating_add(1);
    if secs <= RELATIVE_EXPTIME_MAX {
        return secs;
    }
    let now_secs = u64::try_from(now.as_unix_micros().div_euclid(1_000_000)).unwrap_or(0);
    let abs = now_secs.saturating_add(secs).saturating_add(1);
    if abs > i32::MAX as u64 { 0 } else { abs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_and_distinct() {
        let (a, h) = item_key("p", "a:b", "c");
        assert!(!h);
        assert_eq!(a, "p:a%3Ab:c");
        assert_ne!(item_key("p", "a", "b:c").0, a);
        assert_eq!(item_key("p", "", " ").0, "p::%20");
        assert_eq!(item_key("p", "é", "\0").0, "p:%C3%A9:%00");
    }

    #[test]
    fn long_keys_are_hashed_and_checked() {
        let long = "k".repeat(300);
        let (a, h) = item_key("p", "c", &long);
        assert!(h && a.len() <= MAX_ITEM_KEY && a.starts_with("p:#"));
        assert_ne!(item_key("p", "c", &"k".repeat(301)).0, a);
        let raw = encode(&Meta::default(), Some(("c", &long)), b"v");
        let (_, v) = decode(Bytes::from(raw.clone()), Some(("c", &long)))
            .unwrap()
            .unwrap();
        assert_eq!(&v[..], b"v");
        assert!(
            decode(Bytes::from(raw.clone()), Some(("c", "other")))
                .unwrap()
                .is_none()
        );
        for n in 3..raw.len() - 1 {
            let r = decode(Bytes::copy_from_slice(&raw[..n]), Some(("c", &long)));
            assert!(r.is_err() || r.unwrap().is_none());
        }
    }

    #[test]
    fn exptimes_never_shorten() {
        let now = Timestamp::from_unix_micros(1_700_000_000_000_000);
        assert_eq!(exptime(now, None), 0);
        assert_eq!(exptime(now, Some(Duration::from_millis(300))), 2);
        assert_eq!(exptime(now, Some(Duration::from_secs(100))), 101);
        let forty_days = Duration::from_secs(40 * 24 * 3600);
        assert_eq!(
            exptime(now, Some(forty_days)),
            1_700_000_000 + 40 * 24 * 3600 + 2
        );
        assert_eq!(exptime(now, Some(Duration::from_secs(u64::MAX / 4))), 0);
    }
}
