//! JSON text helpers. Values are kept as the text the user gave (never parsed into a
//! `serde_json::Value` and printed again), because re-serializing loses information: big
//! integers, the exact form of floats, key order.

use serde::de::IgnoredAny;

/// Checks that `text` is one JSON value, returning serde_json's message if not.
pub fn validate(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<IgnoredAny>(text).map(|_| ())
}

/// The stored bytes as JSON text, or `None` if they are not UTF-8 JSON (a value written by a
/// program with another codec, or raw bytes).
pub fn as_json_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    validate(text).ok()?;
    Some(text)
}

/// JSON's insignificant whitespace (RFC 8259): narrower than `char::is_whitespace`.
pub fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Trims JSON whitespace from both ends.
pub fn trim(text: &str) -> &str {
    text.trim_matches(is_json_whitespace)
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// A name (key or collection) for line-oriented output: as it is, unless it contains a line
/// break or starts with `"`, in which case it is JSON-quoted. So every output line is one
/// name, and a line starting with `"` is always JSON.
pub fn line_safe_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.starts_with('"') || name.contains(['\n', '\r']) {
        std::borrow::Cow::Owned(quote(name))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        for s in ["plain", "new\nline", "tab\t\"q\"\\", "\u{1}\u{1f}é😀", ""] {
            let q = quote(s);
            assert_eq!(serde_json::from_str::<String>(&q).unwrap(), s);
        }
        assert_eq!(quote("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn names_are_quoted_only_when_needed() {
        assert_eq!(line_safe_name("alice"), "alice");
        assert_eq!(line_safe_name("a b"), "a b");
        assert_eq!(line_safe_name("a\nb"), "\"a\\nb\"");
        assert_eq!(line_safe_name("\"q"), "\"\\\"q\"");
        assert_eq!(line_safe_name("a\rb"), "\"a\\rb\"");
    }

    #[test]
    fn json_text_detection() {
        assert_eq!(as_json_text(b" {\"a\":1} "), Some(" {\"a\":1} "));
        assert_eq!(as_json_text(b"\xff\x00"), None);
        assert_eq!(as_json_text(b"hello"), None);
        assert_eq!(as_json_text(b""), None);
    }
}
