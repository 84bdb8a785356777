//! The py-key-value "v1 document": the JSON text every py-key-value store
//! writes for an entry (Redis/Valkey/Memcached/Disk/RocksDB/... values,
//! FileTree and S3 files).
//!
//! Written form (Python `json.dumps(..., sort_keys=True)`, see
//! [`crate::python_json`]), with fields in this sorted order and absent ones
//! omitted:
//!
//! ```text
//! {"collection": "users", "created_at": "2026-11-22T02:56:14.569741+00:00",
//!  "expires_at": "2026-11-22T02:57:54.569741+00:00", "key": "bob",
//!  "value": {...}, "version": 1}
//! ```
//!
//! (one line in reality). `key`/`collection` are the *unsanitized* names and
//! are written only by stores that pass them (FileTree and S3 do not).

use std::fmt;

use serde_json::{Map, Value};

use super::python_json::{write_object, write_str};
use crate::Timestamp;
use crate::iso8601::{TimestampError, format_isoformat, parse_iso8601};

/// One stored entry in py-key-value's v1 document format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// The user's value: always a JSON object.
    pub value: Map<String, Value>,
    /// Creation time.
    pub created_at: Option<Timestamp>,
    /// Expiry time; `None` = never.
    pub expires_at: Option<Timestamp>,
    /// The unsanitized key, for stores that record it.
    pub key: Option<String>,
    /// The unsanitized collection, for stores that record it.
    pub collection: Option<String>,
}

/// Why a stored document could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentError {
    /// The bytes are not JSON (or not UTF-8).
    InvalidJson(String),
    /// The JSON contains the bare tokens `NaN`, `Infinity` or `-Infinity`,
    /// which Python's `json` module writes for non-finite floats but which
    /// are not JSON and which `serde_json` cannot represent.
    NonFiniteNumber,
    /// The top level is not a JSON object.
    NotAnObject,
    /// The required `value` field is absent.
    MissingValue,
    /// `value` is neither an object nor a string holding a JSON object.
    InvalidValue(String),
    /// `created_at`/`expires_at` is not a string (named field).
    TimestampNotString(&'static str),
    /// `created_at`/`expires_at` is not an ISO-8601 timestamp with offset.
    InvalidTimestamp(&'static str, TimestampError),
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("py-key-value document: ")?;
        match self {
            DocumentError::InvalidJson(e) => write!(f, "not valid JSON: {e}"),
            DocumentError::NonFiniteNumber => f.write_str(
                "contains a non-finite number (NaN, Infinity or -Infinity, as written by \
                 Python's json module), which is not valid JSON and cannot be represented",
            ),
            DocumentError::NotAnObject => f.write_str("top level is not a JSON object"),
            DocumentError::MissingValue => f.write_str("missing field `value`"),
            DocumentError::InvalidValue(why) => write!(f, "field `value` {why}"),
            DocumentError::TimestampNotString(field) => {
                write!(f, "field `{field}` must be an ISO-8601 string")
            }
            DocumentError::InvalidTimestamp(field, e) => write!(f, "field `{field}`: {e}"),
        }
    }
}

impl std::error::Error for DocumentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DocumentError::InvalidTimestamp(_, e) => Some(e),
            _ => None,
        }
    }
}

/// True if `text` contains a `NaN`/`Infinity` token outside string literals.
/// Only consulted after a parse failure, to give that failure a clear name.
fn has_bare_non_finite(text: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if text[i..].starts_with(b"NaN") || text[i..].starts_with(b"Infinity") {
            return true;
        }
    }
    false
}

fn parse_json(bytes: &[u8]) -> Result<Value, DocumentError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if has_bare_non_finite(bytes) {
            DocumentError::NonFiniteNumber
        } else {
            DocumentError::InvalidJson(e.to_string())
        }
    })
}

fn read_timestamp(
    doc: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Timestamp>, DocumentError> {
    match doc.get(field) {
        // Python never writes `null` (it drops `None` fields); treat an
        // explicit null like an absent field.
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_iso8601(s)
            .map(|t| Some(Timestamp::from_unix_micros(t)))
            .map_err(|e| DocumentError::InvalidTimestamp(field, e)),
        Some(_) => Err(DocumentError::TimestampNotString(field)),
    }
}

fn string_field(doc: &Map<String, Value>, field: &str) -> Option<String> {
    doc.get(field).and_then(Value::as_str).map(str::to_owned)
}

impl Document {
    /// A document holding `value`, with no timestamps and no names.
    pub fn new(value: Map<String, Value>) -> Self {
        Document {
            value,
            ..Document::default()
        }
    }

    /// Serializes exactly as py-key-value does: Python-style JSON with sorted
    /// keys, `"version": 1`, timestamps as `isoformat()` text (`+00:00`,
    /// fraction only when non-zero) and `None` fields omitted.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push('{');
        // Fields are appended in their sorted order; only the first one has
        // no separator in front of it.
        fn field(out: &mut String, name: &str) {
            if out.len() > 1 {
                out.push_str(", ");
            }
            write_str(out, name);
            out.push_str(": ");
        }
        if let Some(c) = &self.collection {
            field(&mut out, "collection");
            write_str(&mut out, c);
        }
        if let Some(t) = self.created_at {
            field(&mut out, "created_at");
            write_str(&mut out, &format_isoformat(t.as_unix_micros()));
        }
        if let Some(t) = self.expires_at {
            field(&mut out, "expires_at");
            write_str(&mut out, &format_isoformat(t.as_unix_micros()));
        }
        if let Some(k) = &self.key {
            field(&mut out, "key");
            write_str(&mut out, k);
        }
        field(&mut out, "value");
        write_object(&mut out, &self.value);
        field(&mut out, "version");
        out.push_str("1}");
        out
    }

    /// Reads a stored document with py-key-value's (lenient) reading rules:
    /// only `value` is required, as an object or as a string containing a
    /// JSON object; `created_at`/`expires_at` are optional but, if present,
    /// must be strings with an ISO-8601 timestamp including a UTC offset;
    /// `key`/`collection` are taken when they are strings; `version` and
    /// unknown fields are ignored.
    pub fn from_json(bytes: &[u8]) -> Result<Document, DocumentError> {
        let Value::Object(doc) = parse_json(bytes)? else {
            return Err(DocumentError::NotAnObject);
        };
        let value = match doc.get("value") {
            None => return Err(DocumentError::MissingValue),
            Some(Value::Object(map)) => map.clone(),
            Some(Value::String(text)) => match parse_json(text.as_bytes()) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(DocumentError::InvalidValue(
                        "is a string whose JSON is not an object".to_owned(),
                    ));
                }
                Err(DocumentError::NonFiniteNumber) => return Err(DocumentError::NonFiniteNumber),
                Err(e) => {
                    return Err(DocumentError::InvalidValue(format!(
                        "is a string that is not valid JSON ({e})"
                    )));
                }
            },
            Some(_) => {
                return Err(DocumentError::InvalidValue(
                    "must be an object or a string containing a JSON object".to_owned(),
                ));
            }
        };
        Ok(Document {
            value,
            created_at: read_timestamp(&doc, "created_at")?,
            expires_at: read_timestamp(&doc, "expires_at")?,
            key: string_field(&doc, "key"),
            collection: string_field(&doc, "collection"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("test value must be an object"),
        }
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_unix_micros(parse_iso8601(s).expect("test timestamp"))
    }

    fn doc(
        c: Option<&str>,
        k: Option<&str>,
        created: &str,
        expires: Option<&str>,
        v: Value,
    ) -> Document {
        Document {
            value: obj(v),
            created_at: Some(ts(created)),
            expires_at: expires.map(ts),
            key: k.map(str::to_owned),
            collection: c.map(str::to_owned),
        }
    }

    /// Writing reproduces `want` and reading it back gives the same document.
    fn check(d: &Document, want: &str) {
        assert_eq!(d.to_json(), want);
        assert_eq!(&Document::from_json(want.as_bytes()).unwrap(), d);
    }

    #[test]
    fn serialization_golden_test() {
        let d = doc(
            None,
            None,
            "2025-01-01T00:00:00+00:00",
            Some("2025-01-01T00:00:10+00:00"),
            json!({"key_one": "value_one", "key_two": "value_two", "key_three": {"nested_key": "nested_value"}}),
        );
        check(
            &d,
            r#"{"created_at": "2025-01-01T00:00:00+00:00", "expires_at": "2025-01-01T00:00:10+00:00", "value": {"key_one": "value_one", "key_three": {"nested_key": "nested_value"}, "key_two": "value_two"}, "version": 1}"#,
        );
    }

    #[test]
    fn redis_rows() {
        let rows: [(Document, &str); 6] = [
            (
                doc(
                    Some("default_collection"),
                    Some("d1"),
                    "2026-11-22T02:56:14.571363+00:00",
                    None,
                    json!({"v": "default"}),
                ),
                r#"{"collection": "default_collection", "created_at": "2026-11-22T02:56:14.571363+00:00", "key": "d1", "value": {"v": "default"}, "version": 1}"#,
            ),
            (
                doc(
                    Some("sessions"),
                    Some("k1"),
                    "2026-11-22T02:56:14.570529+00:00",
                    Some("2026-11-22T02:57:14.570529+00:00"),
                    json!({"i": 1}),
                ),
                r#"{"collection": "sessions", "created_at": "2026-11-22T02:56:14.570529+00:00", "expires_at": "2026-11-22T02:57:14.570529+00:00", "key": "k1", "value": {"i": 1}, "version": 1}"#,
            ),
            (
                doc(
                    Some("sessions"),
                    Some("k2"),
                    "2026-11-22T02:56:14.570529+00:00",
                    Some("2026-11-22T02:57:14.570529+00:00"),
                    json!({"i": 2}),
                ),
                r#"{"collection": "sessions", "created_at": "2026-11-22T02:56:14.570529+00:00", "expires_at": "2026-11-22T02:57:14.570529+00:00", "key": "k2", "value": {"i": 2}, "version": 1}"#,
            ),
            (
                doc(
                    Some("sessions"),
                    Some("s1"),
                    "2026-11-22T02:56:14.570158+00:00",
                    Some("2026-11-22T03:56:15.070158+00:00"),
                    json!({"token": "abc"}),
                ),
                r#"{"collection": "sessions", "created_at": "2026-11-22T02:56:14.570158+00:00", "expires_at": "2026-11-22T03:56:15.070158+00:00", "key": "s1", "value": {"token": "abc"}, "version": 1}"#,
            ),
            (
                doc(
                    Some("users"),
                    Some("alice"),
                    "2026-11-22T02:56:14.568342+00:00",
                    None,
                    json!({"name": "Alice", "age": 30}),
                ),
                r#"{"collection": "users", "created_at": "2026-11-22T02:56:14.568342+00:00", "key": "alice", "value": {"age": 30, "name": "Alice"}, "version": 1}"#,
            ),
            (
                doc(
                    Some("users"),
                    Some("bob"),
                    "2026-11-22T02:56:14.569741+00:00",
                    Some("2026-11-22T02:57:54.569741+00:00"),
                    json!({"name": "Bob", "tags": ["x", "y"], "uni": "héllo 世界", "f": 1.5, "n": null}),
                ),
                r#"{"collection": "users", "created_at": "2026-11-22T02:56:14.569741+00:00", "expires_at": "2026-11-22T02:57:54.569741+00:00", "key": "bob", "value": {"f": 1.5, "n": null, "name": "Bob", "tags": ["x", "y"], "uni": "h\u00e9llo \u4e16\u754c"}, "version": 1}"#,
            ),
        ];
        for (d, want) in &rows {
            check(d, want);
        }
        assert_eq!(rows[5].1.len(), 252);
        // expires_at - created_at equals the requested TTL exactly.
        let s1 = &rows[3].0;
        assert_eq!(
            s1.expires_at.unwrap().as_unix_micros() - s1.created_at.unwrap().as_unix_micros(),
            3_600_500_000
        );
    }

    #[test]
    fn filetree_files_without_key_and_collection() {
        let files: [(Document, &str); 5] = [
            (
                doc(
                    None,
                    None,
                    "2026-11-22T02:56:40.729885+00:00",
                    None,
                    json!({"w": 1}),
                ),
                r#"{"created_at": "2026-11-22T02:56:40.729885+00:00", "value": {"w": 1}, "version": 1}"#,
            ),
            (
                doc(
                    None,
                    None,
                    "2026-11-22T02:56:40.682199+00:00",
                    None,
                    json!({"v": "default"}),
                ),
                r#"{"created_at": "2026-11-22T02:56:40.682199+00:00", "value": {"v": "default"}, "version": 1}"#,
            ),
            (
                doc(
                    None,
                    None,
                    "2026-11-22T02:56:40.629729+00:00",
                    Some("2026-11-22T02:57:40.629729+00:00"),
                    json!({"i": 1}),
                ),
                r#"{"created_at": "2026-11-22T02:56:40.629729+00:00", "expires_at": "2026-11-22T02:57:40.629729+00:00", "value": {"i": 1}, "version": 1}"#,
            ),
            (
                doc(
                    None,
                    None,
                    "2026-11-22T02:56:40.612118+00:00",
                    Some("2026-11-22T03:56:41.112118+00:00"),
                    json!({"token": "abc"}),
                ),
                r#"{"created_at": "2026-11-22T02:56:40.612118+00:00", "expires_at": "2026-11-22T03:56:41.112118+00:00", "value": {"token": "abc"}, "version": 1}"#,
            ),
            (
                doc(
                    None,
                    None,
                    "2026-11-22T02:56:40.593535+00:00",
                    Some("2026-11-22T02:58:20.593535+00:00"),
                    json!({"name": "Bob", "tags": ["x", "y"], "uni": "héllo 世界", "f": 1.5, "n": null}),
                ),
                r#"{"created_at": "2026-11-22T02:56:40.593535+00:00", "expires_at": "2026-11-22T02:58:20.593535+00:00", "value": {"f": 1.5, "n": null, "name": "Bob", "tags": ["x", "y"], "uni": "h\u00e9llo \u4e16\u754c"}, "version": 1}"#,
            ),
        ];
        for (d, want) in &files {
            check(d, want);
        }
    }

    #[test]
    fn minimal_and_escaped_names() {
        check(&Document::new(Map::new()), r#"{"value": {}, "version": 1}"#);
        let d = Document {
            key: Some("k\u{e9}\"y".into()),
            collection: Some("c/1".into()),
            ..Document::new(obj(json!({"a": [1, 2.0]})))
        };
        check(
            &d,
            r#"{"collection": "c/1", "key": "k\u00e9\"y", "value": {"a": [1, 2.0]}, "version": 1}"#,
        );
        // Zero microseconds: no fraction; otherwise six digits.
        let d = Document {
            created_at: Some(Timestamp::from_unix_micros(1_735_689_600_250_000)),
            ..Document::default()
        };
        assert_eq!(
            d.to_json(),
            r#"{"created_at": "2025-01-01T00:00:00.250000+00:00", "value": {}, "version": 1}"#
        );
    }

    #[test]
    fn read_value_as_string_and_ignored_fields() {
        let d = Document::from_json(
            br#"{"value": "{\"b\": 2, \"a\": [1]}", "version": 7, "key": 5, "collection": "c", "extra": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!(d.value, obj(json!({"a": [1], "b": 2})));
        assert_eq!((d.key, d.collection.as_deref()), (None, Some("c")));
        assert_eq!((d.created_at, d.expires_at), (None, None));
        // Lenient timestamp forms Python 3.11 also reads.
        let d = Document::from_json(
            br#"{"value": {}, "created_at": "2025-01-01 01:00:00.5+01:00", "expires_at": null}"#,
        )
        .unwrap();
        assert_eq!(
            (d.created_at, d.expires_at),
            (
                Some(Timestamp::from_unix_micros(1_735_689_600_500_000)),
                None
            )
        );
    }

    #[test]
    fn read_errors() {
        let err = |b: &[u8]| Document::from_json(b).unwrap_err();
        assert_eq!(err(br#"{"version": 1}"#), DocumentError::MissingValue);
        assert_eq!(
            err(br#"{"version": 1}"#).to_string(),
            "py-key-value document: missing field `value`"
        );
        assert_eq!(err(br#"[1]"#), DocumentError::NotAnObject);
        assert!(matches!(err(b"{not json"), DocumentError::InvalidJson(_)));
        assert!(matches!(err(b""), DocumentError::InvalidJson(_)));
        assert!(matches!(
            err(b"{\"value\": {}} x"),
            DocumentError::InvalidJson(_)
        ));
        assert!(matches!(err(b"\xff\xfe"), DocumentError::InvalidJson(_)));
        assert!(matches!(
            err(br#"{"value": [1]}"#),
            DocumentError::InvalidValue(_)
        ));
        assert!(matches!(
            err(br#"{"value": null}"#),
            DocumentError::InvalidValue(_)
        ));
        assert!(matches!(
            err(br#"{"value": "[1]"}"#),
            DocumentError::InvalidValue(_)
        ));
        assert!(matches!(
            err(br#"{"value": "nope"}"#),
            DocumentError::InvalidValue(_)
        ));
        assert_eq!(
            err(br#"{"value": {}, "created_at": 1735689600}"#),
            DocumentError::TimestampNotString("created_at")
        );
        let naive = err(br#"{"value": {}, "expires_at": "2025-01-01T00:00:00"}"#);
        assert!(matches!(
            naive,
            DocumentError::InvalidTimestamp("expires_at", _)
        ));
        assert!(naive.to_string().contains("naive"), "{naive}");
        assert!(matches!(
            err(br#"{"value": {}, "created_at": "yesterday"}"#),
            DocumentError::InvalidTimestamp("created_at", _)
        ));
    }

    #[test]
    fn non_finite_numbers_are_named() {
        for text in [
            r#"{"value": {"nan": NaN}, "version": 1}"#,
            r#"{"value": {"inf": Infinity}, "version": 1}"#,
            r#"{"value": {"y": -Infinity}, "version": 1}"#,
            r#"{"value": {"a": [1, NaN]}}"#,
            r#"{"value": "{\"x\": NaN}"}"#,
        ] {
            let e = Document::from_json(text.as_bytes()).unwrap_err();
            assert_eq!(e, DocumentError::NonFiniteNumber, "{text}");
            assert!(e.to_string().contains("NaN, Infinity or -Infinity"));
        }
        // Inside strings the words are harmless.
        let d = Document::from_json(br#"{"value": {"NaN": "Infinity \" NaN"}}"#).unwrap();
        assert_eq!(d.value, obj(json!({"NaN": "Infinity \" NaN"})));
        // Invalid JSON that merely mentions NaN inside a string is still InvalidJson.
        assert!(matches!(
            Document::from_json(br#"{"value": {"NaN": 1,}}"#).unwrap_err(),
            DocumentError::InvalidJson(_)
        ));
    }
}
