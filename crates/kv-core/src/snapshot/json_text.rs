//! JSON text helpers for snapshot lines. A stored JSON value is copied as the text it is
//! (never parsed into a `serde_json::Value` and printed again), because re-serializing loses
//! information: big integers, the exact form of floats, key order.

use serde::de::IgnoredAny;

/// The stored bytes as JSON text, or `None` if they are not UTF-8 JSON (a value written with
/// another codec, or raw bytes).
pub(super) fn as_json_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<IgnoredAny>(text).ok()?;
    Some(text)
}

/// JSON's insignificant whitespace (RFC 8259): narrower than `char::is_whitespace`.
const WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Trims JSON whitespace from both ends.
pub(super) fn trim(text: &str) -> &str {
    text.trim_matches(WHITESPACE)
}

/// Appends valid JSON text without its insignificant whitespace, so a pretty-printed value
/// fits on one JSON Lines line. Numbers, strings and key order stay byte for byte the same
/// (raw line breaks cannot occur inside JSON strings: they must be escaped there).
pub(super) fn push_minified(out: &mut Vec<u8>, json: &str) {
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

/// Appends `s` as a JSON string literal, escaped exactly as serde_json escapes it (so a line
/// is the same whichever of the two wrote it), without building a temporary `String`.
pub(super) fn push_string(out: &mut Vec<u8>, s: &str) {
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
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "plain",
            "new\nline",
            "tab\t\"q\"\\",
            "\u{1}\u{1f}é😀\u{7f}",
            "",
            &all_controls,
        ] {
            let mut out = Vec::new();
            push_string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn json_text_detection() {
        assert_eq!(as_json_text(b" {\"a\":1} "), Some(" {\"a\":1} "));
        assert_eq!(
            as_json_text(b"123456789012345678901234567890"),
            Some("123456789012345678901234567890")
        );
        assert_eq!(as_json_text(b"\xff\x00"), None);
        assert_eq!(as_json_text(b"hello"), None);
        assert_eq!(as_json_text(b""), None);
    }
}
