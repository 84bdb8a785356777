//! How entries map onto NATS JetStream key-value buckets.
//!
//! # Buckets
//! One bucket per collection, named `NAMESPACE_cNAME` when the collection is 1 to 64 ASCII
//! letters and digits, else `NAMESPACE_h` + the first 48 hex digits of the SHA-256 of the
//! collection. The namespace has no `_`, so the buckets of one store are exactly those whose
//! name starts with `NAMESPACE_`. The bucket's description holds the real collection name; the
//! store checks it before using a bucket, so a hash collision is an error, never a mix-up.
//!
//! # Keys
//! NATS keys allow `[-/_=.A-Za-z0-9]`. A key is written with `A-Z a-z 0-9 - /` kept and every
//! other byte of its UTF-8 text as `_XX` (upper-case hex); the empty key is `=`. Encoded keys
//! longer than 1024 characters become `=H` + the SHA-256 hex of the key, and the value then
//! also carries the full key, checked on every read. (`=` never appears in an encoded key
//! otherwise, so the forms cannot collide.)
//!
//! # Values
//! The kv native envelope ([`kv_core::envelope`], `expires_at`, `created_at`), then for hashed
//! keys `u32-le(len(key)) ‖ key`, then the value bytes. The entry's version is the NATS
//! revision (stream sequence) of its last write.

use kv_core::envelope::{self, Meta};
use kv_core::{Bytes, Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

/// Encoded keys longer than this are hashed.
pub const MAX_DIRECT_KEY: usize = 1024;

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bucket of a collection.
pub fn bucket_name(namespace: &str, collection: &str) -> String {
    if !collection.is_empty()
        && collection.len() <= 64
        && collection.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        format!("{namespace}_c{collection}")
    } else {
        let h = hex(&Sha256::digest(collection.as_bytes()));
        format!("{namespace}_h{}", &h[..48])
    }
}

/// The NATS key of a kv key, and whether it is the hashed form.
pub fn encode_key(key: &str) -> (String, bool) {
    if key.is_empty() {
        return ("=".to_owned(), false);
    }
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'/' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    if out.len() <= MAX_DIRECT_KEY {
        (out, false)
    } else {
        (format!("=H{}", hex(&Sha256::digest(key.as_bytes()))), true)
    }
}

/// The kv key of a direct NATS key; `None` for hashed keys (their key is in the value) and
/// for keys this store did not write.
pub fn decode_key(nats_key: &str) -> Option<String> {
    if nats_key == "=" {
        return Some(String::new());
    }
    if nats_key.starts_with('=') {
        return None;
    }
    let b = nats_key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a NATS key is the hashed form.
pub fn is_hashed(nats_key: &str) -> bool {
    nats_key.starts_with("=H")
}

/// Encodes a value.
pub fn encode(meta: &Meta, hashed_key: Option<&str>, value: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(meta.header_len() + value.len() + 4);
    envelope::encode_into(meta, &[], &mut out);
    if let Some(k) = hashed_key {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
    }
    out.extend_from_slice(value);
    Bytes::from(out)
}

/// Decodes a value: metadata, the full key if `hashed`, and the value bytes.
pub fn decode(raw: Bytes, hashed: bool) -> Result<(Meta, Option<String>, Bytes)> {
    let (meta, mut pos) = envelope::decode_meta(&raw)?;
    let mut key = None;
    if hashed {
        let corrupt = || {
            Error::new(
                ErrorKind::Corrupt,
                "NATS value cut short inside its key record",
            )
        };
        let l = raw.get(pos..pos + 4).ok_or_else(corrupt)?;
        let len = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
        let k = raw.get(pos + 4..pos + 4 + len).ok_or_else(corrupt)?;
        key = Some(String::from_utf8(k.to_vec()).map_err(|_| corrupt())?);
        pos += 4 + len;
    }
    Ok((meta, key, raw.slice(pos..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_valid_nats_keys() {
        for k in [
            "", "a", "a.b", "_", "=", "..", "/x/", "é €", "k\0", "::", "A-z_09",
        ] {
            let (e, hashed) = encode_key(k);
            assert!(!hashed);
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-/_=".contains(&b)),
                "{e}"
            );
            assert_eq!(decode_key(&e).as_deref(), Some(k));
        }
        let long = "x".repeat(2000);
        let (e, hashed) = encode_key(&long);
        assert!(hashed && is_hashed(&e) && decode_key(&e).is_none());
    }

    #[test]
    fn buckets_are_distinct() {
        assert_eq!(bucket_name("kv", "users"), "kv_cusers");
        assert_ne!(bucket_name("kv", "a b"), bucket_name("kv", "a_b"));
        assert!(bucket_name("kv", "").starts_with("kv_h"));
    }
}
