//! Percent-escaping of names into keys (`%` followed by two upper-case hex digits), as the
//! stores that pack a collection and a key into one server key need it on every operation.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `s` to `out`, each byte for which `keep` is false written as `%XX`.
///
/// Runs of kept bytes are copied with one `extend_from_slice`, so a name with nothing to
/// escape costs one copy (the stores call this for every key of every operation). `keep`
/// must refuse `%` itself for the result to be reversible, and should refuse bytes ≥ 0x80
/// if `out` must stay ASCII (refusing only some bytes of a multi-byte character would leave
/// `out` invalid UTF-8).
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
}
