//! How entries map onto a `.safetensors` file.
//!
//! # The file
//!
//! A standard safetensors file (format of the `safetensors` crate 0.8): an 8-byte little-endian
//! header length `N`, `N` bytes of JSON header (tensor name → `dtype`, `shape`,
//! `data_offsets`, plus the optional string map `__metadata__`), then the tensor data. Files
//! written by this store are produced by `safetensors::serialize`, so every tool that reads
//! safetensors (PyTorch, numpy, candle, ...) reads them.
//!
//! # Values
//!
//! Every entry is one tensor:
//! - a value written with the typed API as a [`Tensor`] under kv's default
//!   JSON codec (the canonical text `{"dtype":"F32","shape":[..],"data":"<base64>"}`, exactly
//!   as [`Tensor`]'s `Serialize` writes it) is recognised on `put` and stored
//!   as that tensor, with its dtype and shape; reading it returns the same canonical text;
//! - every other value (raw bytes, JSON of other types, other codecs) is stored as a `U8`
//!   tensor of shape `[len]` whose data are the value's bytes, marked `raw` in the entry
//!   metadata below; reading it returns the bytes unchanged.
//!
//! Tensors of a file without kv metadata (any file written by another program) are read as
//! tensors: `get` returns their canonical JSON, so `get::<Tensor>` works.
//!
//! # Names
//!
//! In a file written by this store (it has `__metadata__["kv.format"] == "1"`):
//! - an entry of the **default collection** is the tensor named by its key, so an exported
//!   model stays loadable by name — except keys containing `/` or equal to `__metadata__`,
//!   which are written as `/` + key;
//! - an entry of another collection is the tensor `<collection>/<key>`, where `%` and `/` in
//!   the collection are escaped as `%25` and `%2F`, so the first `/` separates the two.
//!
//! The three forms (no `/`; leading `/`; a non-empty escaped collection before the first
//! `/`) are disjoint, so two different `(collection, key)` pairs never share a tensor name.
//! In a file without kv metadata every tensor is an entry of the default collection, its name
//! being the key.
//!
//! # Metadata (`__metadata__`, all values strings)
//!
//! | key | value |
//! |---|---|
//! | `kv.format` | `"1"` |
//! | `kv.next_version` | the next version number (decimal) |
//! | `kv.entries` | JSON object: tensor name → `{"t":"raw"\|"tensor","c":created_at,"e":expires_at,"v":version}` (times in microseconds since the Unix epoch; `e` absent for no TTL) |
//!
//! Other `__metadata__` keys belong to the user: they are kept, exposed by
//! [`SafetensorsStore::metadata`](crate::SafetensorsStore::metadata) and written back.
//! An entry whose `kv.entries` record is malformed is reported as `ErrorKind::Corrupt` for
//! that key only; a damaged header or data section makes the whole file `Corrupt` at open.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};

use kv_core::{Bytes, Error, ErrorKind, Result, Timestamp};
use serde::{Deserialize, Serialize};

use crate::tensor::{Dtype, Tensor};

/// The `__metadata__` key that marks a file written by this store.
pub const META_FORMAT: &str = "kv.format";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: &str = "1";
/// The `__metadata__` key of the version counter.
pub const META_NEXT_VERSION: &str = "kv.next_version";
/// The `__metadata__` key of the per-entry records.
pub const META_ENTRIES: &str = "kv.entries";

/// The largest header this crate reads (the limit of the safetensors crate: 100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The tensor name of `(collection, key)` in a file of this store; `collection` is resolved
/// (never empty) and `default` is the store's default collection.
///
/// ```
/// use kv_store_safetensors::format::{tensor_name, parse_name};
///
/// assert_eq!(tensor_name("default_collection", "default_collection", "w"), "w");
/// assert_eq!(tensor_name("default_collection", "default_collection", "a/b"), "/a/b");
/// assert_eq!(tensor_name("default_collection", "users/x", "k"), "users%2Fx/k");
/// assert_eq!(parse_name("users%2Fx/k").unwrap(), (Some("users/x".to_owned()), "k".to_owned()));
/// assert_eq!(parse_name("/a/b").unwrap(), (None, "a/b".to_owned()));
/// ```
pub fn tensor_name(default: &str, collection: &str, key: &str) -> String {
    if collection == default {
        if key.contains('/') || key == "__metadata__" {
            let mut s = String::with_capacity(key.len() + 1);
            s.push('/');
            s.push_str(key);
            s
        } else {
            key.to_owned()
        }
    } else {
        let mut s = String::with_capacity(collection.len() + key.len() + 4);
        for c in collection.chars() {
            match c {
                '%' => s.push_str("%25"),
                '/' => s.push_str("%2F"),
                c => s.push(c),
            }
        }
        s.push('/');
        s.push_str(key);
        s
    }
}

/// The `(collection, key)` of a tensor name written by [`tensor_name`]; `None` as the
/// collection means the default collection. A bad escape is an [`ErrorKind::Corrupt`] error.
pub fn parse_name(name: &str) -> Result<(Option<String>, String)> {
    if let Some(key) = name.strip_prefix('/') {
        return Ok((None, key.to_owned()));
    }
    let Some((coll, key)) = name.split_once('/') else {
        return Ok((None, name.to_owned()));
    };
    let mut out = String::with_capacity(coll.len());
    let mut rest = coll;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3);
        match esc {
            Some("%25") => out.push('%'),
            Some("%2F") => out.push('/'),
            _ => {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!("tensor name {name:?} has a bad escape in its collection"),
                ));
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok((Some(out), key.to_owned()))
}

/// One entry's record in `kv.entries`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    /// `"raw"` or `"tensor"`.
    pub t: Kind,
    /// created_at, µs.
    pub c: i64,
    /// expires_at, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<i64>,
    /// version.
    pub v: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Raw,
    Tensor,
}

/// The metadata of a live entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub raw: bool,
    pub created_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub version: u64,
}

impl Meta {
    fn record(&self) -> Record {
        Record {
            t: if self.raw { Kind::Raw } else { Kind::Tensor },
            c: self.created_at.map_or(0, Timestamp::as_unix_micros),
            e: self.expires_at.map(Timestamp::as_unix_micros),
            v: self.version,
        }
    }
}

/// An entry's metadata, or why it cannot be read (the record as found is kept, so that
/// rewriting the file does not lose it).
#[derive(Clone, Debug)]
pub(crate) enum MetaState {
    Ok(Meta),
    Corrupt {
        record: serde_json::Value,
        reason: String,
    },
}

/// Where a tensor's data is.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    /// In memory.
    Mem(Bytes),
    /// In the file, at this offset of the data section.
    File { offset: u64 },
}

/// One entry: a tensor and its metadata.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub len: usize,
    pub payload: Payload,
    pub meta: MetaState,
}

/// The parsed header of a file.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Where the data section starts (8 + header length).
    pub data_start: u64,
    /// collection (resolved) → key → slot.
    pub colls: BTreeMap<String, BTreeMap<String, Slot>>,
    /// `__metadata__` without the `kv.` keys.
    pub user_meta: BTreeMap<String, String>,
    /// The next version to hand out.
    pub next_version: u64,
    /// The file was written by this store.
    pub kv_format: bool,
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupt, msg.into())
}

/// Reads and checks the header of a safetensors file of `file_len` bytes (the reader is at
/// any position). Never allocates more than the declared header, which is first checked
/// against [`MAX_HEADER_LEN`] and the file length. Tensors are left in the file
/// ([`Payload::File`]).
pub(crate) fn read_header<R: Read + Seek>(
    r: &mut R,
    file_len: u64,
    default: &str,
) -> Result<Parsed> {
    if file_len < 8 {
        return Err(corrupt(format!(
            "not a safetensors file: {file_len} bytes, shorter than the 8-byte header length"
        )));
    }
    r.seek(SeekFrom::Start(0)).map_err(Error::from)?;
    let mut n = [0u8; 8];
    r.read_exact(&mut n).map_err(Error::from)?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_LEN {
        return Err(corrupt(format!(
            "the header declares {n} bytes, more than the {MAX_HEADER_LEN}-byte limit"
        )));
    }
    if n > file_len - 8 {
        return Err(corrupt(format!(
            "the header declares {n} bytes but the file has only {} after the length",
            file_len - 8
        )));
    }
    // n <= MAX_HEADER_LEN, so it fits in usize on every supported platform.
    let mut header = vec![0u8; n as usize];
    r.read_exact(&mut header).map_err(Error::from)?;
    parse_header(&header, file_len, default)
}

/// Parses a header (the `n` bytes after the length) of a file of `file_len` bytes.
pub(crate) fn parse_header(header: &[u8], file_len: u64, default: &str) -> Result<Parsed> {
    let data_start = 8 + header.len() as u64;
    let text = std::str::from_utf8(header)
        .map_err(|e| corrupt(format!("the header is not UTF-8: {e}")))?;
    let metadata: safetensors::tensor::Metadata = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("the header is not a valid safetensors header: {e}")))?;
    let data_len = metadata.data_len() as u64;
    if data_start.checked_add(data_len) != Some(file_len) {
        return Err(corrupt(format!(
            "the header describes {data_len} bytes of tensor data but the file has {}",
            file_len.saturating_sub(data_start)
        )));
    }
    let mut user_meta: BTreeMap<String, String> = metadata
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let kv_format = match user_meta.remove(META_FORMAT) {
        None => false,
        Some(v) if v == FORMAT_VERSION => true,
        Some(v) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("the file has kv format {v:?}; this version reads format {FORMAT_VERSION}"),
            ));
        }
    };
    let mut next_version = 1u64;
    let mut records: HashMap<String, serde_json::Value> = HashMap::new();
    if kv_format {
        if let Some(v) = user_meta.remove(META_NEXT_VERSION) {
            next_version = v
                .parse()
                .map_err(|_| corrupt(format!("{META_NEXT_VERSION} is not a number: {v:?}")))?;
        }
        if let Some(v) = user_meta.remove(META_ENTRIES) {
            records = serde_json::from_str(&v)
                .map_err(|e| corrupt(format!("{META_ENTRIES} is not a JSON object: {e}")))?;
        }
    }
    let mut colls: BTreeMap<String, BTreeMap<String, Slot>> = BTreeMap::new();
    let mut unversioned = Vec::new();
    for (name, info) in metadata.tensors() {
        let dtype = Dtype::from_safetensors(info.dtype)
            .map_err(|e| corrupt(format!("tensor {name:?}: {}", e.message())))?;
        let (start, end) = info.data_offsets;
        let (coll, key) = if kv_format {
            parse_name(&name)?
        } else {
            (None, name.clone())
        };
        let coll = coll.unwrap_or_else(|| default.to_owned());
        let meta = match records.remove(&name) {
            None => MetaState::Ok(Meta {
                raw: false,
                created_at: None,
                expires_at: None,
                version: 0,
            }),
            Some(record) => match serde_json::from_value::<Record>(record.clone()) {
                Ok(r) => {
                    if r.t == Kind::Raw && (dtype != Dtype::U8 || info.shape.len() != 1) {
                        MetaState::Corrupt {
                            record,
                            reason: format!(
                                "raw value stored as a {dtype} tensor of shape {:?}",
                                info.shape
                            ),
                        }
                    } else {
                        next_version = next_version.max(r.v.saturating_add(1));
                        MetaState::Ok(Meta {
                            raw: r.t == Kind::Raw,
                            created_at: Some(Timestamp::from_unix_micros(r.c)),
                            expires_at: r.e.map(Timestamp::from_unix_micros),
                            version: r.v,
                        })
                    }
                }
                Err(e) => MetaState::Corrupt {
                    record,
                    reason: format!("its kv metadata is malformed: {e}"),
                },
            },
        };
        if matches!(meta, MetaState::Ok(Meta { version: 0, .. })) {
            unversioned.push((coll.clone(), key.clone()));
        }
        let slot = Slot {
            dtype,
            shape: info.shape.clone(),
            len: end - start,
            payload: Payload::File {
                offset: start as u64,
            },
            meta,
        };
        if colls.entry(coll).or_default().insert(key, slot).is_some() {
            return Err(corrupt(format!(
                "two tensors map to the same entry (one is {name:?})"
            )));
        }
    }
    // Entries without a record get versions now, in a stable order.
    unversioned.sort();
    for (c, k) in unversioned {
        if let Some(MetaState::Ok(m)) = colls
            .get_mut(&c)
            .and_then(|m| m.get_mut(&k))
            .map(|s| &mut s.meta)
        {
            m.version = next_version;
            next_version += 1;
        }
    }
    Ok(Parsed {
        data_start,
        colls,
        user_meta,
        next_version,
        kv_format,
    })
}

/// Loads a whole file image (`bytes`) into memory slots.
pub(crate) fn parse_bytes(bytes: &Bytes, default: &str) -> Result<Parsed> {
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    let mut parsed = read_header(&mut cursor, bytes.len() as u64, default)?;
    let start = parsed.data_start as usize;
    for coll in parsed.colls.values_mut() {
        for slot in coll.values_mut() {
            if let Payload::File { offset } = slot.payload {
                let from = start + offset as usize;
                slot.payload = Payload::Mem(bytes.slice(from..from + slot.len));
            }
        }
    }
    Ok(parsed)
}

/// The value bytes of a tensor entry: the raw bytes, or the canonical JSON of the tensor.
pub(crate) fn value_bytes(slot: &Slot, meta: &Meta, data: Bytes) -> Result<Bytes> {
    if meta.raw {
        return Ok(data);
    }
    Tensor::new(slot.dtype, slot.shape.clone(), data)
        .map(|t| t.to_json())
        .map_err(|e| corrupt(e.message().to_owned()))
}

/// Builds a whole file image of in-memory slots (every payload must be in memory).
pub(crate) fn write_image(
    colls: &BTreeMap<String, BTreeMap<String, Slot>>,
    user_meta: &BTreeMap<String, String>,
    next_version: u64,
    default: &str,
) -> Result<Vec<u8>> {
    let mut tensors = Vec::new();
    let mut records = serde_json::Map::new();
    for (coll, entries) in colls {
        for (key, slot) in entries {
            let Payload::Mem(data) = &slot.payload else {
                return Err(Error::new(
                    ErrorKind::Backend,
                    "internal error: a tensor to write is not in memory",
                ));
            };
            let name = tensor_name(default, coll, key);
            let record = match &slot.meta {
                MetaState::Ok(m) => {
                    serde_json::to_value(m.record()).map_err(|e| Error::from_json(&e))?
                }
                MetaState::Corrupt { record, .. } => record.clone(),
            };
            records.insert(name.clone(), record);
            let t = Tensor::new(slot.dtype, slot.shape.clone(), data.clone())
                .map_err(|e| corrupt(e.message().to_owned()))?;
            tensors.push((name, t));
        }
    }
    let mut meta: HashMap<String, String> = user_meta
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.insert(META_FORMAT.to_owned(), FORMAT_VERSION.to_owned());
    meta.insert(META_NEXT_VERSION.to_owned(), next_version.to_string());
    meta.insert(
        META_ENTRIES.to_owned(),
        serde_json::Value::Object(records).to_string(),
    );
    serialize(tensors, Some(meta))
}

/// `safetensors::serialize` with kv errors.
pub(crate) fn serialize(
    tensors: Vec<(String, Tensor)>,
    meta: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), meta).map_err(|e| {
        Error::new(
            ErrorKind::Backend,
            format!("cannot serialise the safetensors file: {e}"),
        )
    })
}

trait FromJson {
    fn from_json(e: &serde_json::Error) -> Error;
}

impl FromJson for Error {
    fn from_json(e: &serde_json::Error) -> Error {
        Error::new(ErrorKind::Serialization, format!("JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "default_collection";

    #[test]
    fn names_are_injective() {
        let pairs = [
            (D, "w"),
            (D, "a/b"),
            (D, "/x"),
            (D, "__metadata__"),
            (D, ""),
            ("a", "b"),
            ("a/b", "c"),
            ("a", "b/c"),
            ("%2F", "k"),
            ("/", "k"),
            ("%", ""),
            ("é\0", "::"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (c, k) in pairs {
            let name = tensor_name(D, c, k);
            assert!(seen.insert(name.clone()), "{name}");
            assert_ne!(name, "__metadata__");
            let (pc, pk) = parse_name(&name).unwrap();
            assert_eq!(pc.as_deref().unwrap_or(D), c, "{name}");
            assert_eq!(pk, k);
        }
        assert!(parse_name("a%2/k").is_err());
        assert!(parse_name("a%zz/k").is_err());
    }

    fn header(json: &str, data: usize) -> Vec<u8> {
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data));
        out
    }

    fn open(bytes: &[u8]) -> Result<Parsed> {
        parse_bytes(&Bytes::copy_from_slice(bytes), D)
    }

    #[test]
    fn damaged_headers_are_corrupt_never_a_panic() {
        let good = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        assert!(open(&header(good, 8)).is_ok());
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("short", vec![1, 2, 3]),
            ("huge length", u64::MAX.to_le_bytes().to_vec()),
            ("length beyond file", {
                let mut v = 1000u64.to_le_bytes().to_vec();
                v.extend_from_slice(b"{}");
                v
            }),
            (
                "just over the limit",
                (MAX_HEADER_LEN + 1).to_le_bytes().to_vec(),
            ),
            ("missing data", header(good, 4)),
            ("trailing data", header(good, 12)),
            ("not json", header("{nope", 0)),
            ("not utf8", {
                let mut v = 2u64.to_le_bytes().to_vec();
                v.extend_from_slice(&[0xff, 0xfe]);
                v
            }),
            (
                "offset beyond the file",
                header(
                    r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8000000000]}}"#,
                    8,
                ),
            ),
            (
                "offsets do not match shape",
                header(
                    r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                    8,
                ),
            ),
            (
                "gap between tensors",
                header(
                    r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#,
                    3,
                ),
            ),
            (
                "overflowing shape",
                header(
                    r#"{"w":{"dtype":"F64","shape":[18446744073709551615,18446744073709551615],"data_offsets":[0,8]}}"#,
                    8,
                ),
            ),
            (
                "unknown dtype",
                header(
                    r#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#,
                    16,
                ),
            ),
            (
                "metadata not strings",
                header(r#"{"__metadata__":{"a":1}}"#, 0),
            ),
            (
                "bad kv entries",
                header(r#"{"__metadata__":{"kv.format":"1","kv.entries":"[1"}}"#, 0),
            ),
            (
                "bad version counter",
                header(
                    r#"{"__metadata__":{"kv.format":"1","kv.next_version":"x"}}"#,
                    0,
                ),
            ),
            (
                "bad escape",
                header(
                    r#"{"__metadata__":{"kv.format":"1"},"a%zz/k":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                    1,
                ),
            ),
        ];
        // Flip every byte of a good file in turn.
        let base = header(good, 8);
        for i in 0..base.len() {
            let mut v = base.clone();
            v[i] ^= 0xa5;
            cases.push(("flipped byte", v));
        }
        for (what, bytes) in cases {
            match open(&bytes) {
                Err(e) => assert!(
                    matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Config),
                    "{what}: {e}"
                ),
                // A flipped data byte or a flipped name character is still a valid file.
                Ok(_) => assert_eq!(what, "flipped byte"),
            }
        }
        let e = open(&header(good, 4)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let e = open(&u64::MAX.to_le_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn malformed_records_corrupt_one_entry() {
        let json = r#"{"__metadata__":{"kv.format":"1","kv.entries":"{\"a\":\"junk\",\"b\":{\"t\":\"raw\",\"c\":1,\"v\":4}}"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        let p = open(&header(json, 2)).unwrap();
        let c = &p.colls[D];
        assert!(matches!(c["a"].meta, MetaState::Corrupt { .. }));
        assert!(matches!(
            c["b"].meta,
            MetaState::Ok(Meta {
                raw: true,
                version: 4,
                ..
            })
        ));
        assert_eq!(p.next_version, 5);
        // The corrupt record survives a rewrite.
        let image = write_image(&p.colls, &p.user_meta, p.next_version, D).unwrap();
        let again = open(&image).unwrap();
        assert!(matches!(
            again.colls[D]["a"].meta,
            MetaState::Corrupt { .. }
        ));
    }

    #[test]
    fn other_format_versions_are_refused() {
        let e = open(&header(r#"{"__metadata__":{"kv.format":"2"}}"#, 0)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
