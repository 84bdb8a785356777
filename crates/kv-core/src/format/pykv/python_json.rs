//! Byte-exact reproduction of Python's `json.dumps(v, sort_keys=True)`.
//!
//! py-key-value writes every stored document with Python's default JSON
//! encoder, so a Rust writer has to reproduce the exact same text for the two
//! implementations to share data (and for byte comparisons, hashes or
//! compare-and-swap on the stored text to keep working). The rules are:
//!
//! * separators `", "` and `": "`, no trailing newline;
//! * object keys sorted at every level by code point (equal to UTF-8 byte
//!   order, which is what `str`'s `Ord` gives us);
//! * `ensure_ascii=True`: every non-ASCII code point and DEL (0x7F) escaped as
//!   lowercase `\uXXXX`, code points above U+FFFF as a UTF-16 surrogate pair;
//!   `"` and `\` escaped; control characters as `\n`, `\t`, `\r`, `\b`, `\f`
//!   or `\u00XX`; `/` is *not* escaped;
//! * integers printed as-is; floats in Python `repr` form: shortest
//!   round-trip digits, fixed notation for decimal exponents in `-4..16`
//!   (`1.0`, `0.0001`), otherwise `1e-05` / `1.5e+16` style.
//!
//! Limitations: `serde_json` (without `arbitrary_precision`) cannot hold
//! integers outside the `i64`/`u64` range, which Python can; such numbers are
//! already floats by the time they reach this encoder. Reading a float and
//! writing it back is only byte-stable because the crate enables
//! `serde_json`'s `float_roundtrip` feature (its default parser can be off by
//! one unit in the last place).

use serde_json::{Map, Number, Value};

/// Serializes `v` exactly like Python's `json.dumps(v, sort_keys=True)` with
/// all other arguments at their defaults (`ensure_ascii=True`).
///
/// The keys are sorted here explicitly instead of relying on `serde_json`'s
/// default `BTreeMap`, because cargo feature unification may switch on
/// `preserve_order` elsewhere in a build.
pub fn to_python_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// Appends the Python-JSON text of `v` to `out`.
pub(crate) fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// Appends an object with its keys sorted by code point.
pub(crate) fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v);
    }
    out.push('}');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&python_float_repr(f));
    } else {
        // Unreachable without `arbitrary_precision`; keep the number's own
        // text rather than panicking.
        out.push_str(&n.to_string());
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u16_escape(out: &mut String, unit: u16) {
    out.push_str("\\u");
    for shift in [12u32, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xF)]));
    }
}

/// Appends `s` as a JSON string literal with Python's `ensure_ascii` escaping.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                // Controls, DEL and everything non-ASCII: UTF-16 code units.
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    push_u16_escape(out, *unit);
                }
            }
        }
    }
    out.push('"');
}

/// Shortest round-trip scientific form of a finite `f` (`"-1.2345e-7"`,
/// `"0e0"`, `"1e16"`), choosing like Python when two shortest candidates are
/// equally close to the exact binary value.
///
/// Rust's `{:e}` yields the shortest digits but breaks such exact ties upwards
/// (`954356465384115.25` -> `...115.3`), whereas Python's `repr` picks the even
/// last digit (`...115.2`). Rust's fixed-precision `{:.N e}` rounds the exact
/// value half-to-even, so re-formatting with the same digit count and keeping
/// the result when it still round-trips reproduces Python's choice.
fn shortest_digits_half_even(f: f64) -> String {
    let shortest = format!("{f:e}");
    let mantissa = shortest
        .split_once('e')
        .map_or(shortest.as_str(), |(m, _)| m);
    let count = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let rounded = format!("{:.*e}", count.saturating_sub(1), f);
    if rounded != shortest && rounded.parse::<f64>() == Ok(f) {
        rounded
    } else {
        shortest
    }
}

/// Formats a float like Python's `repr(float)`.
///
/// Python prints the shortest digit string that round-trips (see
/// `shortest_digits_half_even` for the tie rule) and chooses the layout from the decimal exponent
/// `e` of the first digit: fixed notation with at least one fractional digit
/// when `-4 <= e < 16` (`1.0`, `0.0001`, `1000000000000000.0`), otherwise
/// scientific notation with an explicit exponent sign and at least two
/// exponent digits (`1e-05`, `1e+16`, `1.5e-07`). Non-finite values use the
/// bare tokens Python's `json` module emits (`NaN`, `Infinity`, `-Infinity`).
pub(crate) fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sci = shortest_digits_half_even(f);
    let (negative, rest) = match sci.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, sci.as_str()),
    };
    let (mantissa, exp_text) = rest.split_once('e').unwrap_or((rest, "0"));
    let exp: i32 = exp_text.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // A shortest form never ends in 0 (except "0" itself); enforce it anyway.
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);

    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if n <= exp + 1 {
            out.push_str(&digits);
            for _ in 0..(exp + 1 - n) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            // 0 <= exp < n - 1, so the split point is inside the ASCII digits.
            let (int_part, frac_part) = digits.split_at((exp + 1) as usize);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    } else {
        let (first, tail) = digits.split_at(digits.len().min(1));
        out.push_str(first);
        if !tail.is_empty() {
            out.push('.');
            out.push_str(tail);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dumps(text: &str) -> String {
        to_python_json(&serde_json::from_str(text).expect("test input is JSON"))
    }

    #[test]
    fn float_repr_vectors() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (1.23456789012345e10, "12345678901.2345"),
            (1e63, "1e+63"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (9007199254740992.0, "9007199254740992.0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1.5e-7, "1.5e-07"),
            (1.5, "1.5"),
            (-2.5, "-2.5"),
            (123.0, "123.0"),
            (1e100, "1e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (0.00012345, "0.00012345"),
            (0.000012345, "1.2345e-05"),
            (9999999999999998.0, "9999999999999998.0"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
            (-1e-7, "-1e-07"),
            // Exact ties between two shortest candidates: Python takes the even digit.
            (954_356_465_384_115.0 + 0.25, "954356465384115.2"),
            (9_912_610_847_410.0 + 0.8125, "9912610847410.812"),
            (-182_480_950_844_619.0 - 0.125, "-182480950844619.12"),
            (2.5, "2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(*f), *want, "repr of {f:e}");
        }
    }

    #[test]
    fn study_float_list() {
        let v = json!([
            1.0,
            0.1,
            1e16,
            1e15,
            1e-5,
            1e-4,
            1.23456789012345e10,
            1e63,
            -0.0,
            9007199254740992.0,
            1.0 / 3.0
        ]);
        assert_eq!(
            to_python_json(&v),
            "[1.0, 0.1, 1e+16, 1000000000000000.0, 1e-05, 0.0001, 12345678901.2345, 1e+63, -0.0, 9007199254740992.0, 0.3333333333333333]"
        );
    }

    #[test]
    fn integers() {
        assert_eq!(dumps("1000000000000000000"), "1000000000000000000");
        assert_eq!(
            to_python_json(&json!(10_i64.pow(18))),
            "1000000000000000000"
        );
        assert_eq!(dumps("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(dumps("18446744073709551615"), "18446744073709551615");
        assert_eq!(dumps("0"), "0");
        // serde_json reads the (non-Python) token `-0` as the float -0.0.
        assert_eq!(dumps("-0"), "-0.0");
        // Beyond u64 serde_json already holds a float (documented limitation).
        assert_eq!(dumps("18446744073709551616"), "1.8446744073709552e+19");
    }

    #[test]
    fn unicode_example() {
        assert_eq!(
            dumps(r#"{"unicode_key":"Hello 世界 🌍 émojis"}"#),
            r#"{"unicode_key": "Hello \u4e16\u754c \ud83c\udf0d \u00e9mojis"}"#
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            to_python_json(&json!("Line1\nLine2\tTabbed")),
            r#""Line1\nLine2\tTabbed""#
        );
        assert_eq!(
            to_python_json(&json!("a\u{7f}\u{e9}\u{1F30D}\n\t\"\\/\u{0}\u{1f}")),
            r#""a\u007f\u00e9\ud83c\udf0d\n\t\"\\/\u0000\u001f""#
        );
        assert_eq!(
            to_python_json(&json!("\r\u{8}\u{c}\u{b}")),
            r#""\r\b\f\u000b""#
        );
        assert_eq!(
            to_python_json(&json!("\u{80}\u{ffff}\u{10ffff}")),
            r#""\u0080\uffff\udbff\udfff""#
        );
        assert_eq!(to_python_json(&json!("")), r#""""#);
        assert_eq!(
            to_python_json(&json!({"\u{e9}": "x"})),
            r#"{"\u00e9": "x"}"#
        );
    }

    #[test]
    fn sorting_and_separators() {
        assert_eq!(
            dumps(r#"{"b":{"z":1,"a":[{"y":true,"x":false}]},"a":null,"é":3,"Z":4,"":[]}"#),
            r#"{"": [], "Z": 4, "a": null, "b": {"a": [{"x": false, "y": true}], "z": 1}, "\u00e9": 3}"#
        );
        assert_eq!(dumps("{}"), "{}");
        assert_eq!(dumps("[]"), "[]");
        assert_eq!(dumps("[[], {}, [1]]"), "[[], {}, [1]]");
        // Code point order, not UTF-16 order: U+FFFD sorts before U+1F30D.
        assert_eq!(
            to_python_json(&json!({"\u{1F30D}": 1, "\u{FFFD}": 2})),
            r#"{"\ufffd": 2, "\ud83c\udf0d": 1}"#
        );
    }

    #[test]
    fn study_mixed_vector() {
        // json_vectors.py input of the study, minus the >u64 integers.
        let v = json!({"floats": [1.0, 0.1], "s": "a\u{7f}\u{e9}\u{1F30D}\n\t\"\\/\u{0}\u{1f}",
                       "b_key": 1, "a_key": 2, "\u{e9}": 3, "Z": 4});
        assert_eq!(
            to_python_json(&v),
            r#"{"Z": 4, "a_key": 2, "b_key": 1, "floats": [1.0, 0.1], "s": "a\u007f\u00e9\ud83c\udf0d\n\t\"\\/\u0000\u001f", "\u00e9": 3}"#
        );
    }

    #[test]
    fn redis_example_document_252_bytes() {
        let v = json!({"collection": "users", "created_at": "2026-11-22T02:56:14.569741+00:00",
            "expires_at": "2026-11-22T02:57:54.569741+00:00", "key": "bob",
            "value": {"name": "Bob", "tags": ["x", "y"], "uni": "héllo 世界", "f": 1.5, "n": null},
            "version": 1});
        let want = r#"{"collection": "users", "created_at": "2026-11-22T02:56:14.569741+00:00", "expires_at": "2026-11-22T02:57:54.569741+00:00", "key": "bob", "value": {"f": 1.5, "n": null, "name": "Bob", "tags": ["x", "y"], "uni": "h\u00e9llo \u4e16\u754c"}, "version": 1}"#;
        let got = to_python_json(&v);
        assert_eq!(got, want);
        assert_eq!(got.len(), 252);
    }
}
