//! One line of a snapshot: an entry written as a JSON object, and read back (the format is
//! described in the [module docs](super)).
//!
//! Reading never puts input text in an error message: a line holds values, which may be
//! secrets, and errors end up in logs. Messages name the field and what is wrong with it.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{base64, json_text};
use crate::Timestamp;

/// One entry as read from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// The collection, as written in the line (may be empty: the default collection).
    pub collection: String,
    /// The key.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// When the entry expires; `None` = never.
    pub expires_at: Option<Timestamp>,
}

/// Appends one line (with its `\n`) for an entry.
pub(super) fn write(
    out: &mut Vec<u8>,
    collection: &str,
    key: &str,
    value: &[u8],
    expires_at: Option<Timestamp>,
) {
    out.extend_from_slice(b"{\"collection\":");
    json_text::push_string(out, collection);
    out.extend_from_slice(b",\"key\":");
    json_text::push_string(out, key);
    match json_text::as_json_text(value) {
        Some(text) => {
            out.extend_from_slice(b",\"value\":");
            json_text::push_minified(out, text);
        }
        None => {
            out.extend_from_slice(b",\"value_base64\":\"");
            out.extend_from_slice(base64::encode(value).as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"expires_at\":");
    match expires_at {
        Some(t) => json_text::push_string(out, &t.to_rfc3339()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
}

/// The fields of a line, each kept as raw JSON text so that a field of the wrong type is
/// reported by name (serde's own message would quote the offending value). `value` is
/// stored exactly as it is written.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    collection: Option<&'a RawValue>,
    #[serde(default, borrow)]
    key: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    #[serde(default, borrow)]
    value_base64: Option<&'a RawValue>,
    #[serde(default, borrow)]
    expires_at: Option<&'a RawValue>,
}

/// Keeps `"value": null` as the JSON value `null` (a plain `Option` would read it as absent).
fn present<'de, D>(d: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses one line (a trailing `\n` or `\r\n` is fine). `Ok(None)` for a blank line; the
/// error says what is wrong, without the line number (the caller knows it).
pub(super) fn parse(line: &[u8]) -> Result<Option<Record>, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8 text ({e})"))?;
    let text = json_text::trim(text);
    if text.is_empty() {
        return Ok(None);
    }
    // Checked first: serde would also read a struct from an array.
    if !text.starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => "not an export record (a JSON object)".to_owned(),
            Err(e) => format!("invalid JSON: {}", syntax_message(&e)),
        });
    }
    let fields: Fields<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            // An object of raw values only fails this way for a repeated field.
            "not an export record: a field appears twice".to_owned()
        } else {
            format!("invalid JSON: {}", syntax_message(&e))
        }
    })?;
    let collection = string_field(fields.collection, "collection")?.ok_or("has no collection")?;
    let key = string_field(fields.key, "key")?.ok_or("has no key")?;
    let value_base64 = string_field(fields.value_base64, "value_base64")?;
    let value = match (fields.value, value_base64) {
        (Some(v), None) => Bytes::copy_from_slice(v.get().as_bytes()),
        (None, Some(b)) => {
            Bytes::from(base64::decode(&b).ok_or("value_base64 is not valid base64")?)
        }
        (Some(_), Some(_)) => return Err("has both value and value_base64".to_owned()),
        (None, None) => return Err("has neither value nor value_base64".to_owned()),
    };
    let expires_at = string_field(fields.expires_at, "expires_at")?
        .map(|t| {
            crate::iso8601::parse_iso8601(&t)
                .map(Timestamp::from_unix_micros)
                .map_err(|e| format!("expires_at is not an RFC 3339 time: {}", e.reason()))
        })
        .transpose()?;
    Ok(Some(Record {
        collection,
        key,
        value,
        expires_at,
    }))
}

/// A JSON string field (`null` counts as absent).
fn string_field(raw: Option<&RawValue>, name: &str) -> Result<Option<String>, String> {
    raw.map(|raw| {
        serde_json::from_str::<String>(raw.get()).map_err(|_| format!("{name} is not a string"))
    })
    .transpose()
}

/// serde_json's message for a syntax error, which names the problem and never quotes the
/// input, with the position as a column (the line number is the caller's).
fn syntax_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => format!("{} at column {}", &text[..at], e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(c: &str, k: &str, v: &[u8], t: Option<Timestamp>) -> String {
        let mut out = Vec::new();
        write(&mut out, c, k, v, t);
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
            let r = parse(text.as_bytes()).unwrap().unwrap();
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
    fn blank_lines_and_unknown_fields() {
        assert_eq!(parse(b" \t\r\n").unwrap(), None);
        let r = parse(b"{\"collection\":\"c\",\"key\":\"k\",\"value\":1,\"created_at\":\"x\"}\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.key.as_str(), &r.value[..], r.expires_at),
            ("k", &b"1"[..], None)
        );
    }

    #[test]
    fn malformed_lines() {
        for (bad, says) in [
            (&b"{"[..], "invalid JSON"),
            (b"not json", "invalid JSON"),
            (b"[\"c\",\"k\",1,null,null]", "not an export record"),
            (b"[1]", "not an export record"),
            (b"\"x\"", "not an export record"),
            (b"{\"collection\":\"c\",\"key\":\"k\"}", "neither"),
            (
                b"{\"collection\":\"c\",\"key\":\"k\",\"value\":1,\"value_base64\":\"\"}",
                "both",
            ),
            (
                b"{\"collection\":\"c\",\"key\":\"k\",\"value_base64\":\"!\"}",
                "base64",
            ),
            (
                b"{\"collection\":\"c\",\"key\":\"k\",\"value\":1,\"expires_at\":\"soon\"}",
                "expires_at",
            ),
            (b"{\"key\":\"k\",\"value\":1}", "collection"),
            (
                b"{\"collection\":\"c\",\"key\":\"k\",\"key\":\"k\",\"value\":1}",
                "twice",
            ),
            (
                b"{\"collection\":\"c\",\"key\":7,\"value\":1}",
                "key is not a string",
            ),
            (b"\xff{}", "UTF-8"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains(says),
                "{}: {err}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn errors_never_quote_the_input() {
        for bad in [
            &br#"{"collection":"c","key":"k","value":1,"expires_at":"hunter2"}"#[..],
            br#"{"collection":"c","key":"k","value_base64":"hunter2"}"#,
            br#"{"collection":"c","key":"k","value_base64":12345678}"#,
            br#"{"collection":["hunter2"],"key":"k","value":1}"#,
            br#"{"collection":"c","key":"k","value":hunter2}"#,
            br#"12345678"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                !err.contains("hunter2") && !err.contains("12345678"),
                "{err}"
            );
        }
    }
}
