//! Percent-escaping of names into keys (`%` followed by two upper-case hex digits), as the
//! stores that pack a collection and a key into one server key need it on every operation.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `s` to `out`, each byte for which `keep` is false written as `%XX`.
///
/// Runs of kept bytes are copied with one `extend_from_slice`, so a name with nothing to
/// escape costs one copy (the stores call this for every key of every operation). `keep`
/// must refuse `%` itself for the result to be reversible, and should refuse bytes ≥ 0x80
/// if `out` must stay ASCII (refusing only some bytes of a multi-byte character would leave
/// `out` invalid UTF-8; use [`push_escaped_str`] for a `String`).
///
/// # Example
///
/// ```
/// use kv_core::format::percent::push_escaped;
///
/// let mut out = b"ns:".to_vec();
/// push_escaped(&mut out, "a:b%c", |b| b != b':' && b != b'%');
/// assert_eq!(out, b"ns:a%3Ab%25c");
/// ```
pub fn push_escaped(out: &mut Vec<u8>, s: &str, keep: impl Fn(u8) -> bool) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !keep(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 15)],
            ]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// [`push_escaped`] into a `String`: every byte ≥ 0x80 is escaped too, whatever `keep`
/// says, so `out` stays valid UTF-8 (and ASCII where it was).
///
/// # Example
///
/// ```
/// use kv_core::format::percent::push_escaped_str;
///
/// let mut out = String::from("p:");
/// push_escaped_str(&mut out, "a b·", |b| b != b' ' && b != b'%');
/// assert_eq!(out, "p:a%20b%C2%B7");
/// ```
pub fn push_escaped_str(out: &mut String, s: &str, keep: impl Fn(u8) -> bool) {
    let mut bytes = std::mem::take(out).into_bytes();
    push_escaped(&mut bytes, s, |b| b.is_ascii() && keep(b));
    // Only ASCII bytes were kept and the escapes are ASCII, appended to a valid string.
    *out = String::from_utf8(bytes).unwrap_or_else(|e| {
        // Unreachable by the argument above; never panic in library code.
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_refused_bytes_and_copies_the_rest() {
        let keep = |b: u8| b.is_ascii_graphic() && b != b'%';
        let mut out = Vec::new();
        push_escaped(&mut out, "", keep);
        assert!(out.is_empty());
        push_escaped(&mut out, "plain", keep);
        push_escaped(&mut out, "% x%", keep);
        push_escaped(&mut out, "é", keep);
        assert_eq!(out, b"plain%25%20x%25%C3%A9");
    }

    #[test]
    fn the_string_form_stays_utf8() {
        let mut out = String::new();
        push_escaped_str(&mut out, "ü:1", |_| true);
        assert_eq!(out, "%C3%BC:1");
    }
}
