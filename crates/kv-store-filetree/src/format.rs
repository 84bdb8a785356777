//! How entries map onto files: name escaping, the entry document, the store's own files.
//!
//! # Layout
//!
//! ```text
//! <root>/
//!   .kv-filetree.lock          the lock file (writers hold an exclusive lock on it)
//!   .kv-filetree.json          {"format": 1, "next_version": N}: the version counter's reserve
//!   <collection name>/         one directory per collection (escaped name)
//!     <key name>.json          one file per entry (escaped name + ".json")
//!     .tmp-...                 a write in progress (renamed over the entry when complete)
//! ```
//!
//! # Names
//!
//! A key or collection becomes a file name with [`encode_name`], which is deterministic and
//! injective ([`decode_name`] inverts it), and whose output:
//!
//! - only holds `a-z 0-9 _ - . % ^ ~` and uppercase hex digits after `%`: no `/`, `\`, NUL,
//!   `:` or any other character a file system could treat specially;
//! - never starts or ends with `.` (so never `.` or `..`, never hidden, never a trailing dot
//!   that Windows drops), and is never empty;
//! - never differs from another encoding by letter case only (letters are lowercase, an
//!   uppercase letter `X` is written `^x`), so two keys never collide on case-insensitive file
//!   systems (macOS, Windows);
//! - never is a Windows device name (`con`, `nul`, `com1`, ... before the first dot): its
//!   first letter is percent-escaped (`con` → `%63on`);
//! - is at most [`MAX_NAME_LEN`] bytes: a longer encoding is cut (on an escape boundary) to
//!   [`HASHED_PREFIX_LEN`] bytes and followed by `~` and the SHA-256 of the full name in hex.
//!   Such a name cannot be decoded: the entry file holds the full key and collection, which is
//!   what scans and listings return.
//!
//! | name | encoding |
//! |---|---|
//! | `alice` | `alice` |
//! | `Alice Smith` | `^alice%20^smith` |
//! | `..` | `%2E%2E` |
//! | `a/b` | `a%2Fb` |
//! | `é` | `%C3%A9` |
//! | `` (empty) | `%` |
//! | `con` | `%63on` |
//!
//! Unescaped characters: `a-z`, `0-9`, `_`, `-`, and `.` except first and last. Everything
//! else is escaped: `A-Z` as `^` + the lowercase letter, every other byte of the UTF-8 form as
//! `%XX` (uppercase hex).
//!
//! # Entry files
//!
//! Each entry is a pretty-printed JSON document (one trailing newline):
//!
//! ```json
//! {
//!   "collection": "users",
//!   "key": "alice",
//!   "value": {"name":"Alice","age":30},
//!   "created_at": "2026-05-01T12:00:00.123456Z",
//!   "expires_at": "2026-05-01T13:00:00.123456Z",
//!   "version": 42
//! }
//! ```
//!
//! - `value` is the stored value **verbatim** when its bytes are a valid JSON text (UTF-8,
//!   without leading or trailing whitespace) — what the typed JSON API writes. Any other
//!   value (binary, text that is not JSON, JSON with surrounding whitespace) is written as
//!   `"value_base64": "<standard base64 with padding>"` instead. Exactly one of the two is
//!   present.
//! - `created_at` and `expires_at` are RFC 3339 in UTC with microseconds; `expires_at` is
//!   absent for entries that never expire.
//! - `version` is the entry's compare-and-swap version, unique in the store (see below).
//! - `collection` and `key` are the full, unescaped names; they must match the file's place
//!   in the tree, otherwise the file is reported as [`ErrorKind::Corrupt`](kv_core::ErrorKind).
//!
//! Other fields are ignored when reading. Files and directories whose names are not an
//! encoding this store produces (`notes.txt`, `README.json`, dot files) are not the store's:
//! they are never listed, read or deleted.
//!
//! # Versions
//!
//! Versions come from a counter shared by every process using the tree: `.kv-filetree.json`
//! holds `next_version`, above every version handed out so far. A process reserves
//! [`VERSION_BLOCK`] versions at a time by raising it (under the write lock, atomically and
//! durably), so versions are never reused, not even after a crash.

use std::path::{Path, PathBuf};

use kv_core::{Bytes, Entry, Error, ErrorKind, Result, Timestamp, Version};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The file name of the lock file in the root.
pub const LOCK_FILE: &str = ".kv-filetree.lock";
/// The file name of the state file (format number, version counter) in the root.
pub const STATE_FILE: &str = ".kv-filetree.json";
/// The prefix of temporary files (writes in progress).
pub const TEMP_PREFIX: &str = ".tmp-";
/// The extension of entry files.
pub const ENTRY_EXT: &str = ".json";
/// The on-disk format this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// How many versions a process reserves at once.
pub const VERSION_BLOCK: u64 = 1024;
/// The longest encoded name kept as is (entry files add `.json`: 205 bytes, well below the
/// 255-byte limit of common file systems).
pub const MAX_NAME_LEN: usize = 200;
/// How much of a too-long encoding a hashed name keeps before `~` and the 64-digit hash.
pub const HASHED_PREFIX_LEN: usize = 128;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const EMPTY_NAME: &str = "%";
const HASH_MARK: char = '~';
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
    "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    "conin$", "conout$",
];

/// The escaped form of every character of `name`, one token per character.
fn push_char(out: &mut String, c: char, first: bool, last: bool) {
    match c {
        'a'..='z' | '0'..='9' | '_' | '-' => out.push(c),
        '.' if !first && !last => out.push('.'),
        'A'..='Z' => {
            out.push('^');
            out.push(c.to_ascii_lowercase());
        }
        _ => {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(HEX_UPPER[usize::from(b >> 4)] as char);
                out.push(HEX_UPPER[usize::from(b & 15)] as char);
            }
        }
    }
}

/// The full (not length-limited) escaping of `name`.
fn escape(name: &str) -> String {
    if name.is_empty() {
        return EMPTY_NAME.to_owned();
    }
    let mut out = String::with_capacity(name.len() + 8);
    let n = name.chars().count();
    for (i, c) in name.chars().enumerate() {
        push_char(&mut out, c, i == 0, i + 1 == n);
    }
    // Windows device names, also with an extension (`nul.txt`): escape the first letter.
    let stem = out.split('.').next().unwrap_or("");
    if RESERVED.contains(&stem) {
        let first = out.remove(0);
        let mut fixed = String::with_capacity(out.len() + 3);
        push_char_escaped(&mut fixed, first);
        fixed.push_str(&out);
        out = fixed;
    }
    out
}

fn push_char_escaped(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push('%');
        out.push(HEX_UPPER[usize::from(b >> 4)] as char);
        out.push(HEX_UPPER[usize::from(b & 15)] as char);
    }
}

/// The file-name form of a key or collection name (without the `.json` of entry files).
///
/// ```
/// use kv_store_filetree::format::encode_name;
///
/// assert_eq!(encode_name("alice"), "alice");
/// assert_eq!(encode_name("Alice Smith"), "^alice%20^smith");
/// assert_eq!(encode_name("../etc/passwd"), "%2E.%2Fetc%2Fpasswd");
/// assert_eq!(encode_name(""), "%");
/// assert!(encode_name(&"k".repeat(1000)).len() <= kv_store_filetree::format::MAX_NAME_LEN);
/// ```
pub fn encode_name(name: &str) -> String {
    let full = escape(name);
    if full.len() <= MAX_NAME_LEN {
        return full;
    }
    // Cut on a token boundary: never inside `%XX` or `^x`.
    let bytes = full.as_bytes();
    let mut end = 0;
    while end < bytes.len() {
        let len = match bytes[end] {
            b'%' => 3,
            b'^' => 2,
            _ => 1,
        };
        if end + len > HASHED_PREFIX_LEN {
            break;
        }
        end += len;
    }
    let digest = Sha256::digest(name.as_bytes());
    let mut out = String::with_capacity(end + 1 + 64);
    out.push_str(&full[..end]);
    out.push(HASH_MARK);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// What a file name in the tree stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The name, decoded.
    Name(String),
    /// A hashed name (the original was too long): the full name is inside the entry file.
    /// Holds the decoded part before the hash, a prefix of the full name.
    Hashed(String),
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'^' => {
                let c = *bytes.get(i + 1)?;
                if !c.is_ascii_lowercase() {
                    return None;
                }
                out.push(c.to_ascii_uppercase());
                i += 2;
            }
            b @ (b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.') => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes a file name made by [`encode_name`]; `None` if no name encodes to it (a file that
/// is not the store's).
///
/// ```
/// use kv_store_filetree::format::{decode_name, encode_name, Decoded};
///
/// assert_eq!(decode_name("^alice%20^smith"), Some(Decoded::Name("Alice Smith".into())));
/// assert_eq!(decode_name("notes.TXT"), None);
/// assert!(matches!(decode_name(&encode_name(&"k".repeat(500))), Some(Decoded::Hashed(_))));
/// ```
pub fn decode_name(file_name: &str) -> Option<Decoded> {
    if file_name == EMPTY_NAME {
        return Some(Decoded::Name(String::new()));
    }
    if let Some((prefix, hash)) = file_name.split_once(HASH_MARK) {
        let hex_ok =
            hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_ok || prefix.len() > HASHED_PREFIX_LEN {
            return None;
        }
        let decoded = unescape(prefix)?;
        // The prefix of a canonical encoding re-encodes to itself (up to its last token).
        return Some(Decoded::Hashed(decoded));
    }
    let name = unescape(file_name)?;
    // Only canonical encodings are the store's (`%61` is not how `a` is written).
    (escape(&name) == file_name && file_name.len() <= MAX_NAME_LEN).then_some(Decoded::Name(name))
}

/// The directory of a collection (already resolved: never empty).
pub fn collection_dir(root: &Path, collection: &str) -> PathBuf {
    root.join(encode_name(collection))
}

/// The file name of an entry.
pub fn entry_file_name(key: &str) -> String {
    let mut name = encode_name(key);
    name.push_str(ENTRY_EXT);
    name
}

/// The file of an entry (the collection already resolved: never empty).
///
/// ```
/// use std::path::Path;
/// use kv_store_filetree::format::entry_path;
///
/// assert_eq!(entry_path(Path::new("/data"), "users", "Bob"), Path::new("/data/users/^bob.json"));
/// assert_eq!(entry_path(Path::new("/data"), "..", "/"), Path::new("/data/%2E%2E/%2F.json"));
/// ```
pub fn entry_path(root: &Path, collection: &str, key: &str) -> PathBuf {
    collection_dir(root, collection).join(entry_file_name(key))
}

// ----- documents -----

#[derive(Serialize)]
struct DocOut<'a> {
    collection: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    version: u64,
}

fn some_raw<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct DocIn<'a> {
    collection: String,
    key: String,
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

/// An entry as stored in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The full collection name.
    pub collection: String,
    /// The full key.
    pub key: String,
    /// The value.
    pub value: Bytes,
    /// When it was written.
    pub created_at: Option<Timestamp>,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// Its version.
    pub version: u64,
}

impl Document {
    /// True if the entry has expired at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// The entry a read returns.
    pub fn into_entry(self) -> Entry {
        Entry::new(self.value)
            .with_created_at(self.created_at)
            .with_expires_at(self.expires_at)
            .with_version(Some(Version::from_u64(self.version)))
    }
}

/// The value as verbatim JSON, if it is a JSON text without surrounding whitespace.
fn as_json(value: &[u8]) -> Option<&RawValue> {
    let text = std::str::from_utf8(value).ok()?;
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    (raw.get().len() == text.len()).then_some(raw)
}

/// The bytes of an entry file.
pub fn encode_document(
    collection: &str,
    key: &str,
    value: &[u8],
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    version: u64,
) -> Vec<u8> {
    let json = as_json(value);
    let doc = DocOut {
        collection,
        key,
        value: json,
        value_base64: if json.is_none() {
            Some(base64_encode(value))
        } else {
            None
        },
        created_at: created_at.to_rfc3339(),
        expires_at: expires_at.map(Timestamp::to_rfc3339),
        version,
    };
    let mut out = Vec::with_capacity(value.len() + 256);
    // Serializing plain strings, numbers and a validated raw value cannot fail.
    if serde_json::to_writer_pretty(&mut out, &doc).is_err() {
        out.clear();
    }
    out.push(b'\n');
    out
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupt, msg.into())
}

/// Parses an entry file.
pub fn decode_document(bytes: &[u8]) -> Result<Document> {
    let doc: DocIn<'_> = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("not a kv filetree entry document: {e}")))?;
    let value = match (doc.value, doc.value_base64) {
        (Some(raw), None) => Bytes::copy_from_slice(raw.get().as_bytes()),
        (None, Some(b64)) => Bytes::from(
            base64_decode(&b64).ok_or_else(|| corrupt("value_base64 is not valid base64"))?,
        ),
        _ => {
            return Err(corrupt(
                "an entry document needs exactly one of `value` and `value_base64`",
            ));
        }
    };
    let time = |s: Option<String>, what: &str| -> Result<Option<Timestamp>> {
        s.map(|s| Timestamp::parse(&s).map_err(|e| corrupt(format!("bad {what}: {}", e.message()))))
            .transpose()
    };
    Ok(Document {
        collection: doc.collection,
        key: doc.key,
        value,
        created_at: time(doc.created_at, "created_at")?,
        expires_at: time(doc.expires_at, "expires_at")?,
        version: doc.version,
    })
}

/// The state file's content.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) format: u64,
    pub(crate) next_version: u64,
}

// ----- base64 (standard alphabet, padded) -----

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
///
/// ```
/// assert_eq!(kv_store_filetree::format::base64_encode(b"\xde\xad\xbe\xef"), "3q2+7w==");
/// ```
pub fn base64_encode(data: &[u8]) -> String {
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

/// Decodes standard padded base64; `None` if it is not.
///
/// ```
/// assert_eq!(kv_store_filetree::format::base64_decode("3q2+7w=="), Some(b"\xde\xad\xbe\xef".to_vec()));
/// assert_eq!(kv_store_filetree::format::base64_decode("3q2"), None);
/// ```
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
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
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == chunks;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
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

    fn safe(enc: &str) {
        assert!(!enc.is_empty());
        assert!(enc.len() <= MAX_NAME_LEN, "{enc}");
        assert!(!enc.starts_with('.') && !enc.ends_with('.'), "{enc}");
        assert!(enc != "." && enc != "..");
        assert!(
            enc.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'%' | b'^' | b'~' | b'A'..=b'F')),
            "{enc}"
        );
        let stem = enc.split('.').next().unwrap();
        assert!(
            !RESERVED.contains(&stem.to_ascii_lowercase().as_str()),
            "{enc}"
        );
    }

    #[test]
    fn names_are_safe_and_round_trip() {
        let long = "x".repeat(5000);
        let long_dots = ".".repeat(300);
        let names = [
            "",
            "a",
            "A",
            "..",
            ".",
            "...",
            "/",
            "a/b",
            "/abs",
            "../etc/passwd",
            "C:\\win",
            "nul\0byte",
            "\0",
            "con",
            "CON",
            "nul.txt",
            "com1",
            "lpt9.x",
            "Key",
            "key",
            "KEY",
            "é",
            "🌍",
            "%",
            "%41",
            "^a",
            "~",
            "a~b",
            "x.json",
            ".hidden",
            "trailing.",
            " ",
            "tab\t",
            "\u{7f}",
            long.as_str(),
            long_dots.as_str(),
            ".kv-filetree.lock",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            let enc = encode_name(n);
            safe(&enc);
            assert!(
                seen.insert(enc.to_ascii_lowercase()),
                "collision (case-folded) for {n:?}"
            );
            match decode_name(&enc).unwrap() {
                Decoded::Name(d) => assert_eq!(d, n),
                Decoded::Hashed(prefix) => {
                    assert!(n.starts_with(&prefix), "{n:?} / {prefix:?}");
                    assert!(escape(n).len() > MAX_NAME_LEN);
                }
            }
        }
    }

    #[test]
    fn long_names_differ_by_hash() {
        let a = format!("{}a", "k".repeat(1499));
        let b = format!("{}b", "k".repeat(1499));
        assert_ne!(encode_name(&a), encode_name(&b));
        let u = "é".repeat(750);
        let enc = encode_name(&u);
        safe(&enc);
        // Never cut inside an escape.
        let prefix = enc.split('~').next().unwrap();
        assert!(unescape(prefix).is_some());
    }

    #[test]
    fn foreign_names_are_not_decoded() {
        for f in [
            "README",
            "notes.TXT",
            "%61",
            "%2e",
            "a b",
            "^A",
            "%",
            "x~abc",
            ".tmp-1",
        ] {
            if f == "%" {
                continue;
            }
            assert_eq!(decode_name(f), None, "{f}");
        }
    }

    #[test]
    fn documents_round_trip() {
        let t = Timestamp::from_unix_micros(1_795_316_174_569_741);
        for value in [
            &b"{\"name\":\"Alice\",\"age\":30}"[..],
            b"30",
            b"null",
            b"\"text\"",
            b" 1",
            b"{\"a\": 1} ",
            b"not json",
            b"\xde\xad\xbe\xef",
            b"",
            b"NaN",
        ] {
            let bytes = encode_document("c", "k", value, t, Some(t), 7);
            let text = std::str::from_utf8(&bytes).unwrap();
            let doc = decode_document(&bytes).unwrap();
            assert_eq!(&doc.value[..], value, "{text}");
            assert_eq!(doc.created_at, Some(t));
            assert_eq!(doc.expires_at, Some(t));
            assert_eq!(doc.version, 7);
            assert_eq!((doc.collection.as_str(), doc.key.as_str()), ("c", "k"));
        }
        let bytes = encode_document("c", "k", b"{\"a\":[1,2]}", t, None, 1);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"value\": {\"a\":[1,2]}"), "{text}");
        assert!(!text.contains("expires_at"), "{text}");
    }

    #[test]
    fn bad_documents_are_corrupt() {
        for bad in [
            &b""[..],
            b"\xde\xad",
            b"{}",
            b"{\"collection\":\"c\",\"key\":\"k\",\"version\":1}",
            b"{\"collection\":\"c\",\"key\":\"k\",\"version\":1,\"value\":1,\"value_base64\":\"\"}",
            b"{\"collection\":\"c\",\"key\":\"k\",\"version\":1,\"value_base64\":\"!!!!\"}",
            b"{\"collection\":\"c\",\"key\":\"k\",\"version\":1,\"value\":1,\"expires_at\":\"soon\"}",
        ] {
            assert_eq!(decode_document(bad).unwrap_err().kind(), ErrorKind::Corrupt);
        }
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        for bad in ["=AAA", "A===", "AA=A", "AAA", "AA==AAAA", "AA\nA"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
