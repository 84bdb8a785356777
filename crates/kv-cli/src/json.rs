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

/// Appends valid JSON text without its insignificant whitespace, so a pretty-printed value
/// fits on one JSON Lines line. Numbers, strings and key order stay byte for byte the same
/// (raw line breaks cannot occur inside JSON strings: they must be escaped there).
pub fn push_minified(out: &mut Vec<u8>, json: &str) {
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
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
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        out.push(b);
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
    out.push(b'"');
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    // Only ASCII escapes were added to valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
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
    fn minify_keeps_strings_and_numbers() {
        let text = "{\n  \"a b\": [1, 2.50, 123456789012345678901234567890],\n  \"s\": \"x \\\" y\\\\\"\n}";
        let mut out = Vec::new();
        push_minified(&mut out, text);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a b":[1,2.50,123456789012345678901234567890],"s":"x \" y\\"}"#
        );
    }

    #[test]
    fn quoting_matches_serde_json() {
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
