//! The py-key-value format, byte-compatible with the Python library py-key-value 0.5.0
//! (`py-key-value-aio`), so a Rust and a Python service can share one store.
//!
//! - [`to_python_json`]: Python's `json.dumps(v, sort_keys=True)` text, byte for byte;
//! - [`Document`]: the "v1 document" every py-key-value store writes
//!   (`{"collection", "created_at", "expires_at", "key", "value", "version": 1}`);
//! - [`sanitize`]: py-key-value's key and collection sanitization strategies, with the V1
//!   presets of each store;
//! - [`format_isoformat`] / [`parse_iso8601`]: its timestamps.
//!
//! py-key-value values are always JSON objects: [`encode_value`] turns a kv value (bytes
//! holding a JSON object) into a document, and anything else is a clear
//! [`ErrorKind::Serialization`] error.
//!
//! ```
//! use kv_core::format::pykv::{Document, to_python_json};
//! use kv_core::Timestamp;
//!
//! let mut doc = kv_core::format::pykv::encode_value(br#"{"name":"Bob","uni":"h\u00e9llo"}"#).unwrap();
//! doc.key = Some("bob".into());
//! doc.collection = Some("users".into());
//! doc.created_at = Some(Timestamp::parse("2026-11-22T02:56:14.569741+00:00").unwrap());
//! assert_eq!(
//!     doc.to_json(),
//!     r#"{"collection": "users", "created_at": "2026-11-22T02:56:14.569741+00:00", "key": "bob", "value": {"name": "Bob", "uni": "h\u00e9llo"}, "version": 1}"#
//! );
//! let back = Document::from_json(doc.to_json().as_bytes()).unwrap();
//! assert_eq!(back, doc);
//! ```

mod document;
mod python_json;
pub mod sanitize;

pub use crate::iso8601::{
    MAX_PYTHON_MICROS, MIN_PYTHON_MICROS, TimestampError, format_isoformat, parse_iso8601,
};
pub use document::{Document, DocumentError};
pub use python_json::to_python_json;

use crate::{Bytes, Error, ErrorKind, Result};

/// A document holding `value`, which must be the bytes of a JSON object.
pub fn encode_value(value: &[u8]) -> Result<Document> {
    let parsed: serde_json::Value = serde_json::from_slice(value).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            "py-key-value format: the value is not valid JSON",
        )
        .with_source(e)
    })?;
    match parsed {
        serde_json::Value::Object(map) => Ok(Document::new(map)),
        other => Err(Error::new(
            ErrorKind::Serialization,
            format!(
                "py-key-value format: values must be JSON objects, got {}",
                json_type(&other)
            ),
        )),
    }
}

/// The value of a document as compact JSON bytes, as kv returns it.
pub fn decode_value(doc: &Document) -> Bytes {
    // Serializing a Map of Values cannot fail.
    Bytes::from(serde_json::to_vec(&doc.value).unwrap_or_default())
}

/// Reads a stored document; malformed documents are [`ErrorKind::Corrupt`].
pub fn read_document(raw: &[u8]) -> Result<Document> {
    Document::from_json(raw).map_err(|e| Error::new(ErrorKind::Corrupt, e.to_string()))
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_objects_are_rejected_clearly() {
        for (v, what) in [
            ("[1]", "an array"),
            ("1", "a number"),
            ("\"s\"", "a string"),
        ] {
            let e = encode_value(v.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Serialization);
            assert!(e.to_string().contains(what), "{e}");
        }
        assert_eq!(
            encode_value(b"{").unwrap_err().kind(),
            ErrorKind::Serialization
        );
    }

    #[test]
    fn corrupt_documents_are_corrupt() {
        assert_eq!(
            read_document(b"{\"x\": 1}").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}
