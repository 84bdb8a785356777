//! Byte-compatibility with py-key-value 0.5.0: documents written by its RedisStore (captured
//! from a live server, see shared reference §11.3) decode, and re-encode to the same bytes.

use kv_core::Timestamp;
use kv_core::format::pykv::{Document, encode_value, read_document, to_python_json};

const REDIS_BOB: &str = r#"{"collection": "users", "created_at": "2026-11-22T02:56:14.569741+00:00", "expires_at": "2026-11-22T02:57:54.569741+00:00", "key": "bob", "value": {"f": 1.5, "n": null, "name": "Bob", "tags": ["x", "y"], "uni": "h\u00e9llo \u4e16\u754c"}, "version": 1}"#;

#[test]
fn python_written_document_round_trips_byte_for_byte() {
    let doc = read_document(REDIS_BOB.as_bytes()).unwrap();
    assert_eq!(doc.key.as_deref(), Some("bob"));
    assert_eq!(doc.collection.as_deref(), Some("users"));
    assert_eq!(
        doc.expires_at.unwrap().as_unix_micros() - doc.created_at.unwrap().as_unix_micros(),
        100_000_000
    );
    assert_eq!(doc.to_json(), REDIS_BOB);
    assert_eq!(REDIS_BOB.len(), 252);
}

#[test]
fn rust_written_document_matches_python_layout() {
    let mut doc: Document = encode_value(br#"{"name":"Alice","age":30}"#).unwrap();
    doc.key = Some("alice".into());
    doc.collection = Some("users".into());
    doc.created_at = Some(Timestamp::parse("2026-11-22T02:56:14.568342+00:00").unwrap());
    assert_eq!(
        doc.to_json(),
        r#"{"collection": "users", "created_at": "2026-11-22T02:56:14.568342+00:00", "key": "alice", "value": {"age": 30, "name": "Alice"}, "version": 1}"#
    );
    assert_eq!(
        to_python_json(&serde_json::json!({"unicode_key": "Hello 世界 🌍 émojis"})),
        r#"{"unicode_key": "Hello \u4e16\u754c \ud83c\udf0d \u00e9mojis"}"#
    );
}
