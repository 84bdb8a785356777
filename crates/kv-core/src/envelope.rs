//! The native envelope: how metadata travels with a value in backends that have no native
//! field for it (redb, LMDB, RocksDB, plain files, ...).
//!
//! # Layout (version 1)
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 1 | magic `0xC1` — never the first byte of UTF-8 text, JSON or MessagePack, so a value written without an envelope is detected as such |
//! | 1 | 1 | format version, `0x01` |
//! | 2 | 1 | flags: bit 0 = `expires_at` present, bit 1 = `created_at` present, bit 2 = `version` present; bits 3–7 must be 0 |
//! | 3 | 8 | `expires_at`: i64 little-endian, microseconds since the Unix epoch (if bit 0) |
//! | … | 8 | `created_at`: i64 little-endian, microseconds since the Unix epoch (if bit 1) |
//! | … | 8 | `version`: u64 little-endian, incremented by the store on every write (if bit 2) |
//! | … | rest | the value, unchanged |
//!
//! The fields that are present follow each other in this order without padding, so the
//! smallest envelope is 3 bytes and the largest 27. Any other magic, version or flag bit, or a
//! header cut short, is [`ErrorKind::Corrupt`]: a reader never
//! guesses.
//!
//! ```
//! use bytes::Bytes;
//! use kv_core::envelope::{self, Meta};
//! use kv_core::Timestamp;
//!
//! let meta = Meta { expires_at: Some(Timestamp::from_unix_micros(1)), created_at: None, version: Some(7) };
//! let raw = envelope::encode(&meta, b"hello");
//! assert_eq!(&raw[..3], &[0xC1, 0x01, 0b101]);
//! assert_eq!(raw.len(), 3 + 8 + 8 + 5);
//! let (back, value) = envelope::decode(Bytes::from(raw)).unwrap();
//! assert_eq!(back, meta);
//! assert_eq!(&value[..], b"hello");
//! ```

use bytes::{BufMut, Bytes};

use crate::{Entry, Error, ErrorKind, Result, Timestamp, Version};

/// First byte of every envelope.
pub const MAGIC: u8 = 0xC1;
/// The envelope format version written by this crate.
pub const VERSION: u8 = 1;

const FLAG_EXPIRES: u8 = 1;
const FLAG_CREATED: u8 = 1 << 1;
const FLAG_VERSION: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = FLAG_EXPIRES | FLAG_CREATED | FLAG_VERSION;

/// The metadata carried by an envelope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// When the entry expires.
    pub expires_at: Option<Timestamp>,
    /// When the entry was written.
    pub created_at: Option<Timestamp>,
    /// The write counter for compare-and-swap.
    pub version: Option<u64>,
}

impl Meta {
    /// The size of the header for this metadata.
    pub fn header_len(&self) -> usize {
        3 + 8
            * (usize::from(self.expires_at.is_some())
                + usize::from(self.created_at.is_some())
                + usize::from(self.version.is_some()))
    }

    /// True if the entry has expired at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// An [`Entry`] with this metadata and `value`.
    pub fn into_entry(self, value: Bytes) -> Entry {
        Entry::new(value)
            .with_created_at(self.created_at)
            .with_expires_at(self.expires_at)
            .with_version(self.version.map(Version::from_u64))
    }
}

/// Writes the envelope of `meta` around `value`.
pub fn encode(meta: &Meta, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(meta.header_len() + value.len());
    encode_into(meta, value, &mut out);
    out
}

/// Appends the envelope of `meta` around `value` to `out`.
pub fn encode_into(meta: &Meta, value: &[u8], out: &mut impl BufMut) {
    let mut flags = 0;
    if meta.expires_at.is_some() {
        flags |= FLAG_EXPIRES;
    }
    if meta.created_at.is_some() {
        flags |= FLAG_CREATED;
    }
    if meta.version.is_some() {
        flags |= FLAG_VERSION;
    }
    out.put_u8(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(flags);
    if let Some(t) = meta.expires_at {
        out.put_i64_le(t.as_unix_micros());
    }
    if let Some(t) = meta.created_at {
        out.put_i64_le(t.as_unix_micros());
    }
    if let Some(v) = meta.version {
        out.put_u64_le(v);
    }
    out.put_slice(value);
}

/// Reads only the metadata and the header length (cheap: for scans, expiry checks, cull).
pub fn decode_meta(raw: &[u8]) -> Result<(Meta, usize)> {
    let corrupt =
        |what: &str| Error::new(ErrorKind::Corrupt, format!("invalid kv envelope: {what}"));
    let [magic, version, flags, ..] = *raw else {
        return Err(corrupt("shorter than its 3-byte header"));
    };
    if magic != MAGIC {
        return Err(corrupt(&format!("bad magic byte 0x{magic:02x}")));
    }
    if version != VERSION {
        return Err(corrupt(&format!("unknown format version {version}")));
    }
    if flags & !KNOWN_FLAGS != 0 {
        return Err(corrupt(&format!("unknown flags 0b{flags:08b}")));
    }
    let mut pos = 3;
    let mut field = |present: bool| -> Result<Option<[u8; 8]>> {
        if !present {
            return Ok(None);
        }
        let bytes = raw
            .get(pos..pos + 8)
            .ok_or_else(|| corrupt("header cut short"))?;
        pos += 8;
        let mut a = [0; 8];
        a.copy_from_slice(bytes);
        Ok(Some(a))
    };
    let expires_at = field(flags & FLAG_EXPIRES != 0)?
        .map(|b| Timestamp::from_unix_micros(i64::from_le_bytes(b)));
    let created_at = field(flags & FLAG_CREATED != 0)?
        .map(|b| Timestamp::from_unix_micros(i64::from_le_bytes(b)));
    let version = field(flags & FLAG_VERSION != 0)?.map(u64::from_le_bytes);
    Ok((
        Meta {
            expires_at,
            created_at,
            version,
        },
        pos,
    ))
}

/// Splits an envelope into its metadata and its value (a zero-copy slice of `raw`).
pub fn decode(raw: Bytes) -> Result<(Meta, Bytes)> {
    let (meta, len) = decode_meta(&raw)?;
    Ok((meta, raw.slice(len..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_exact_layout() {
        let meta = Meta {
            expires_at: Some(Timestamp::from_unix_micros(0x0102_0304_0506_0708)),
            created_at: Some(Timestamp::from_unix_micros(-1)),
            version: Some(2),
        };
        let raw = encode(&meta, b"v");
        let mut expected = vec![0xC1, 0x01, 0b111];
        expected.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]);
        expected.extend_from_slice(&[0xff; 8]);
        expected.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        expected.push(b'v');
        assert_eq!(raw, expected);
        assert_eq!(decode(Bytes::from(raw)).unwrap().0, meta);
    }

    #[test]
    fn empty_meta_and_value() {
        let raw = encode(&Meta::default(), b"");
        assert_eq!(raw, vec![0xC1, 1, 0]);
        let (m, v) = decode(Bytes::from(raw)).unwrap();
        assert_eq!(m, Meta::default());
        assert!(v.is_empty());
    }

    #[test]
    fn corrupt_inputs_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"\xC1",
            b"\xC1\x01",
            b"{\"a\":1}",
            b"\xC1\x02\x00",
            b"\xC1\x01\x08",
            b"\xC1\x01\x01\x00\x00",
        ];
        for c in cases {
            let e = decode(Bytes::copy_from_slice(c)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{c:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_header_fails_cleanly() {
        let raw = encode(
            &Meta {
                expires_at: Some(Timestamp::from_unix_micros(5)),
                created_at: Some(Timestamp::from_unix_micros(6)),
                version: Some(7),
            },
            b"",
        );
        for n in 0..raw.len() {
            assert!(decode_meta(&raw[..n]).is_err());
        }
        assert!(decode_meta(&raw).is_ok());
    }
}
