//! The file format: one pretty-printed JSON document for the whole store.
//!
//! ```json
//! {
//!   "format": "kv-jsonfile",
//!   "format_version": 1,
//!   "next_version": 4,
//!   "collections": {
//!     "users": {
//!       "alice": {
//!         "value": {"name":"Alice","age":30},
//!         "created_at": "2026-05-01T12:00:00.123456Z",
//!         "version": 1
//!       },
//!       "avatar": {
//!         "value_base64": "iVBORw0KGgo=",
//!         "created_at": "2026-05-01T12:00:01Z",
//!         "expires_at": "2026-05-01T13:00:01Z",
//!         "version": 3
//!       }
//!     }
//!   }
//! }
//! ```
//!
//! - `collections` maps each collection name to its entries, each key to its entry; both are
//!   written in sorted (UTF-8 byte) order, so the file is deterministic and diffs well. Names
//!   are plain JSON strings: any UTF-8 works, no escaping scheme is involved.
//! - An entry's `value` is the stored value **verbatim** when it is a JSON text without
//!   surrounding whitespace (what the typed JSON API writes); any other value (binary, plain
//!   text, JSON with whitespace around it) is `value_base64` (standard alphabet, padded)
//!   instead. Exactly one of the two is present, and values round-trip byte for byte.
//! - `created_at` and `expires_at` are RFC 3339 UTC with microseconds; `expires_at` only for
//!   entries with a TTL. `version` is the compare-and-swap version; `next_version` is above
//!   every version handed out, so versions are never reused.
//! - An entry that cannot be decoded (edited by hand into something else) does not stop the
//!   store from opening: it is kept as it is, reported as `ErrorKind::Corrupt` when read, and
//!   written back unchanged until it is overwritten or deleted. A file that is not JSON at all,
//!   or not this layout, is refused when opening.
//! - Unknown fields are ignored. An empty file is an empty store.

use std::collections::BTreeMap;

use kv_core::{Bytes, Entry, Error, ErrorKind, Result, Timestamp, Version};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The `format` field of every file of this store.
pub const FORMAT_NAME: &str = "kv-jsonfile";
/// The `format_version` this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// A value in memory.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A JSON text, written verbatim.
    Json(Box<RawValue>),
    /// Anything else, written as base64.
    Bin(Bytes),
}

impl Value {
    pub(crate) fn from_bytes(value: &Bytes) -> Value {
        if let Ok(text) = std::str::from_utf8(value)
            && let Ok(raw) = serde_json::from_str::<&RawValue>(text)
            && raw.get().len() == text.len()
            && let Ok(raw) = RawValue::from_string(text.to_owned())
        {
            return Value::Json(raw);
        }
        Value::Bin(value.clone())
    }

    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Value::Json(raw) => Bytes::copy_from_slice(raw.get().as_bytes()),
            Value::Bin(b) => b.clone(),
        }
    }
}

/// A decoded entry.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub(crate) value: Value,
    pub(crate) created_at: Option<Timestamp>,
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) version: u64,
}

impl Item {
    pub(crate) fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    pub(crate) fn to_entry(&self) -> Entry {
        Entry::new(self.value.to_bytes())
            .with_created_at(self.created_at)
            .with_expires_at(self.expires_at)
            .with_version(Some(Version::from_u64(self.version)))
    }
}

/// An entry slot: decoded, or kept verbatim because it could not be decoded.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    Item(Item),
    Bad(Box<RawValue>, String),
}

/// The whole store in memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct Data {
    pub(crate) next_version: u64,
    pub(crate) collections: BTreeMap<String, BTreeMap<String, Slot>>,
}

// ----- writing -----

struct ItemOut<'a>(&'a Item);

impl Serialize for ItemOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let it = self.0;
        let n = 3 + usize::from(it.expires_at.is_some());
        let mut st = s.serialize_struct("Entry", n)?;
        match &it.value {
            Value::Json(raw) => st.serialize_field("value", raw)?,
            Value::Bin(b) => st.serialize_field("value_base64", &base64_encode(b))?,
        }
        if let Some(t) = it.created_at {
            st.serialize_field("created_at", &t.to_rfc3339())?;
        }
        if let Some(t) = it.expires_at {
            st.serialize_field("expires_at", &t.to_rfc3339())?;
        }
        st.serialize_field("version", &it.version)?;
        st.end()
    }
}

struct SlotOut<'a>(&'a Slot);

impl Serialize for SlotOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Slot::Item(it) => ItemOut(it).serialize(s),
            Slot::Bad(raw, _) => raw.serialize(s),
        }
    }
}

struct EntriesOut<'a>(&'a BTreeMap<String, Slot>);

impl Serialize for EntriesOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &SlotOut(v))?;
        }
        m.end()
    }
}

struct CollectionsOut<'a>(&'a BTreeMap<String, BTreeMap<String, Slot>>);

impl Serialize for CollectionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (c, entries) in self.0 {
            m.serialize_entry(c, &EntriesOut(entries))?;
        }
        m.end()
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("File", 4)?;
        st.serialize_field("format", FORMAT_NAME)?;
        st.serialize_field("format_version", &FORMAT_VERSION)?;
        st.serialize_field("next_version", &self.next_version)?;
        st.serialize_field("collections", &CollectionsOut(&self.collections))?;
        st.end()
    }
}

/// The bytes of the file.
pub(crate) fn encode_file(data: &Data) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    serde_json::to_writer_pretty(&mut out, data).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            format!("cannot encode the file: {e}"),
        )
    })?;
    out.push(b'\n');
    Ok(out)
}

// ----- reading -----

#[derive(Deserialize)]
struct FileIn {
    format: String,
    format_version: u64,
    #[serde(default)]
    next_version: u64,
    #[serde(default)]
    collections: BTreeMap<String, BTreeMap<String, Box<RawValue>>>,
}

fn some_raw<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct ItemIn<'a> {
    #[serde(default, borrow, deserialize_with = "some_raw")]
    value: Option<&'a RawValue>,
    #[serde(default)]
    value_base64: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    version: u64,
}

fn decode_item(raw: &RawValue) -> std::result::Result<Item, String> {
    let it: ItemIn<'_> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let value = match (it.value, it.value_base64) {
        (Some(v), None) => Value::Json(v.to_owned()),
        (None, Some(b)) => Value::Bin(Bytes::from(
            base64_decode(&b).ok_or("value_base64 is not valid base64")?,
        )),
        _ => return Err("an entry needs exactly one of `value` and `value_base64`".to_owned()),
    };
    let time = |s: Option<String>| -> std::result::Result<Option<Timestamp>, String> {
        s.map(|s| Timestamp::parse(&s).map_err(|e| e.message().to_owned()))
            .transpose()
    };
    Ok(Item {
        value,
        created_at: time(it.created_at)?,
        expires_at: time(it.expires_at)?,
        version: it.version,
    })
}

/// Parses the file; an empty (or whitespace-only) file is an empty store.
pub(crate) fn decode_file(bytes: &[u8]) -> Result<Data> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Data {
            next_version: 1,
            ..Data::default()
        });
    }
    let file: FileIn = serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("not a kv jsonfile document: {e}"),
        )
    })?;
    if file.format != FORMAT_NAME {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "the file's format is {:?}, not {FORMAT_NAME:?}",
                file.format
            ),
        ));
    }
    if file.format_version != FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "the file has format_version {}, this version reads {FORMAT_VERSION}",
                file.format_version
            ),
        ));
    }
    let mut max_version = 0;
    let collections = file
        .collections
        .into_iter()
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(c, entries)| {
            let entries = entries
                .into_iter()
                .map(|(k, raw)| {
                    let slot = match decode_item(&raw) {
                        Ok(it) => {
                            max_version = max_version.max(it.version);
                            Slot::Item(it)
                        }
                        Err(why) => Slot::Bad(raw, why),
                    };
                    (k, slot)
                })
                .collect();
            (c, entries)
        })
        .collect();
    Ok(Data {
        // Never below a version in the file, even if `next_version` was edited.
        next_version: file.next_version.max(max_version.saturating_add(1)).max(1),
        collections,
    })
}

// ----- base64 (standard alphabet, padded) -----

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        out.push(char::from(B64[(n >> 18) as usize & 63]));
        out.push(char::from(B64[(n >> 12) as usize & 63]));
        out.push(if chunk.len() > 1 {
            char::from(B64[(n >> 6) as usize & 63])
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            char::from(B64[n as usize & 63])
        } else {
            '='
        });
    }
    out
}

pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let chunks = bytes.len() / 4;
    let mut out = Vec::with_capacity(chunks * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | val(c)?;
        }
        n <<= 6 * pad as u32;
        let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&b[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: &[u8], expires: bool) -> Slot {
        let t = Timestamp::from_unix_micros(1_795_316_174_569_741);
        Slot::Item(Item {
            value: Value::from_bytes(&Bytes::copy_from_slice(value)),
            created_at: Some(t),
            expires_at: expires.then_some(t),
            version: 7,
        })
    }

    #[test]
    fn files_round_trip_byte_exact_values() {
        let values: &[&[u8]] = &[
            b"{\"b\":1,\"a\":[1, 2]}",
            b"30",
            b"null",
            b"\"s\"",
            b" 1",
            b"not json",
            b"\xff\x00",
            b"",
            b"NaN",
        ];
        let mut data = Data {
            next_version: 9,
            ..Data::default()
        };
        for (i, v) in values.iter().enumerate() {
            data.collections
                .entry("c/é".to_owned())
                .or_default()
                .insert(format!("k{i}\0"), item(v, i % 2 == 0));
        }
        let bytes = encode_file(&data).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"value\": {\"b\":1,\"a\":[1, 2]}"), "{text}");
        let back = decode_file(&bytes).unwrap();
        assert_eq!(back.next_version, 9);
        for (i, v) in values.iter().enumerate() {
            let Slot::Item(it) = &back.collections["c/é"][&format!("k{i}\0")] else {
                panic!("bad slot");
            };
            assert_eq!(&it.value.to_bytes()[..], *v);
            assert_eq!(it.expires_at.is_some(), i % 2 == 0);
        }
        assert_eq!(encode_file(&back).unwrap(), bytes, "re-encoding is stable");
    }

    #[test]
    fn bad_entries_are_kept_and_bad_files_refused() {
        let text = br#"{"format":"kv-jsonfile","format_version":1,"next_version":1,
            "collections":{"c":{"bad":"garbage","good":{"value":1,"version":5}}}}"#;
        let data = decode_file(text).unwrap();
        assert!(matches!(data.collections["c"]["bad"], Slot::Bad(..)));
        assert!(matches!(data.collections["c"]["good"], Slot::Item(..)));
        assert_eq!(data.next_version, 6);
        let again = encode_file(&data).unwrap();
        assert!(
            std::str::from_utf8(&again)
                .unwrap()
                .contains("\"bad\": \"garbage\"")
        );
        assert_eq!(decode_file(b"").unwrap().collections.len(), 0);
        assert_eq!(decode_file(b"[1]").unwrap_err().kind(), ErrorKind::Corrupt);
        assert_eq!(
            decode_file(b"{\"a\":").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            decode_file(br#"{"format":"other","format_version":1}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::Config
        );
        assert_eq!(
            decode_file(br#"{"format":"kv-jsonfile","format_version":2}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        for bad in ["=AAA", "A===", "AA=A", "AAA", "AA==AAAA"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
