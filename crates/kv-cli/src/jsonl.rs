//! The export/import line format (JSON Lines), shared by `kv export` and `kv import`.
//!
//! One object per entry, in this field order:
//!
//! ```text
//! {"collection":"users","key":"alice","value":{"age":30},"expires_at":null}
//! {"collection":"blobs","key":"logo","value_base64":"iVBORw0KGgo=","expires_at":"2026-11-22T02:56:14.569741Z"}
//! ```
//!
//! `value` is the stored JSON text, minified but otherwise byte for byte what was stored (so
//! big integers survive); values that are not UTF-8 JSON are written as `value_base64`
//! (standard base64), so an export is lossless for every store. `expires_at` is RFC 3339 UTC
//! with microseconds, or `null` for entries that never expire. Readers ignore unknown fields,
//! so later versions may add some (such as `created_at`).

use kv::{Bytes, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{base64, json};

/// One entry as read from (or written to) a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The collection.
    pub collection: String,
    /// The key.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// When the entry expires; `None` = never.
    pub expires_at: Option<Timestamp>,
}

/// Appends one line (with its `\n`) for an entry.
pub fn write_record(
    out: &mut Vec<u8>,
    collection: &str,
    key: &str,
    value: &[u8],
    expires_at: Option<Timestamp>,
) {
    out.extend_from_slice(b"{\"collection\":");
    json::push_string(out, collection);
    out.extend_from_slice(b",\"key\":");
    json::push_string(out, key);
    match json::as_json_text(value) {
        Some(text) => {
            out.extend_from_slice(b",\"value\":");
            json::push_minified(out, text);
        }
        None => {
            out.extend_from_slice(b",\"value_base64\":\"");
            out.extend_from_slice(base64::encode(value).as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"expires_at\":");
    match expires_at {
        Some(t) => json::push_string(out, &t.to_rfc3339()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
}

/// The fields of a line as they are parsed. `value` borrows the raw JSON text so it is stored
/// exactly as exported.
#[derive(Deserialize)]
struct Line<'a> {
    collection: String,
    key: String,
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    #[serde(default)]
    value_base64: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

/// Keeps `"value": null` as the JSON value `null` (a plain `Option` would read it as absent).
fn present<'de, D>(d: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses one (non-blank) line; the error says what is wrong, without the line number.
pub fn parse_record(line: &str) -> Result<Record, String> {
    let line: Line<'_> = serde_json::from_str(line).map_err(|e| {
        if e.is_data() {
            format!("not an export record: {e}")
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    let value = match (line.value, line.value_base64) {
        (Some(v), None) => Bytes::copy_from_slice(v.get().as_bytes()),
        (None, Some(b)) => Bytes::from(
            base64::decode(&b).ok_or_else(|| "value_base64 is not valid base64".to_owned())?,
        ),
        (Some(_), Some(_)) => return Err("has both value and value_base64".to_owned()),
        (None, None) => return Err("has neither value nor value_base64".to_owned()),
    };
    let expires_at = line
        .expires_at
        .map(|t| Timestamp::parse(&t).map_err(|e| format!("expires_at: {}", e.message())))
        .transpose()?;
    Ok(Record {
        collection: line.collection,
        key: line.key,
        value,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(c: &str, k: &str, v: &[u8], t: Option<Timestamp>) -> String {
        let mut out = Vec::new();
        write_record(&mut out, c, k, v, t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_values_are_embedded_and_minified() {
        let t = Timestamp::from_unix_micros(1_795_316_174_569_741);
        assert_eq!(
            line(
                "users",
                "a\nb",
                b"{ \"n\": 123456789012345678901 }\n",
                Some(t)
            ),
            "{\"collection\":\"users\",\"key\":\"a\\nb\",\"value\":{\"n\":123456789012345678901},\"expires_at\":\"2026-11-22T02:56:14.569741Z\"}\n"
        );
    }

    #[test]
    fn binary_values_use_base64() {
        assert_eq!(
            line("c", "k", b"\xff\x00", None),
            "{\"collection\":\"c\",\"key\":\"k\",\"value_base64\":\"/wA=\",\"expires_at\":null}\n"
        );
    }

    #[test]
    fn round_trip() {
        let t = Timestamp::from_unix_micros(1_795_316_174_569_741);
        let cases: [(&str, &str, &[u8], Option<Timestamp>); 5] = [
            ("users", "alice", b"{\"age\":30}", None),
            (
                "",
                "\u{1F600} ключ\r\n\"",
                b"123456789012345678901234567890",
                Some(t),
            ),
            ("bin", "x", b"\x00\x01\xfe\xff", None),
            ("n", "null", b"null", None),
            ("s", "s", b"\"text\"", None),
        ];
        for (c, k, v, t) in cases {
            let text = line(c, k, v, t);
            assert_eq!(text.matches('\n').count(), 1, "{text}");
            let r = parse_record(text.trim_end()).unwrap();
            assert_eq!(
                r,
                Record {
                    collection: c.into(),
                    key: k.into(),
                    value: Bytes::copy_from_slice(v),
                    expires_at: t
                }
            );
        }
    }

    #[test]
    fn malformed_lines() {
        for (bad, says) in [
            ("{", "invalid JSON"),
            ("[1]", "not an export record"),
            ("{\"collection\":\"c\",\"key\":\"k\"}", "neither"),
            (
                "{\"collection\":\"c\",\"key\":\"k\",\"value\":1,\"value_base64\":\"\"}",
                "both",
            ),
            (
                "{\"collection\":\"c\",\"key\":\"k\",\"value_base64\":\"!\"}",
                "base64",
            ),
            (
                "{\"collection\":\"c\",\"key\":\"k\",\"value\":1,\"expires_at\":\"soon\"}",
                "expires_at",
            ),
            ("{\"key\":\"k\",\"value\":1}", "collection"),
        ] {
            let err = parse_record(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
