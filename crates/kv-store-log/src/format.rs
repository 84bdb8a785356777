//! The log file: one JSON object per line, each ending with a CRC-32 of itself.
//!
//! # Lines
//!
//! Every line is a JSON object whose **last** member is `"crc":"XXXXXXXX"` (8 lower-case hex
//! digits): the CRC-32 (IEEE) of the line's bytes before `"crc"` (so up to and including the
//! `,` that precedes it). A line is written in one `write` and ends with `\n`.
//!
//! | `op` | members | meaning |
//! |---|---|---|
//! | `header` | `format` (= 1), `next_version` | first line of every file; versions below `next_version` may have been used |
//! | `put` | `c`, `k`, `ver`, `ct`, `exp` (optional), `v` or `b` | an entry: collection, key, version, created/expires at (µs since the Unix epoch), value as a JSON string (`v`, when it is UTF-8) or base64 (`b`) |
//! | `del` | `c`, `k` | a tombstone |
//! | `clear` | `c` | removes every entry of a collection written before it |
//! | `batch` | `n` | the next `n` lines (puts or tombstones) are one atomic batch |
//!
//! ```text
//! {"op":"header","format":1,"next_version":1,"crc":"3d1ab6f5"}
//! {"op":"put","c":"users","k":"alice","ver":1,"ct":1767225600000000,"v":"30","crc":"…"}
//! {"op":"batch","n":2,"crc":"…"}
//! {"op":"put","c":"users","k":"bob","ver":2,"ct":1767225600000000,"v":"31","crc":"…"}
//! {"op":"put","c":"users","k":"eve","ver":3,"ct":1767225600000000,"exp":1767229200000000,"b":"AP8B","crc":"…"}
//! {"op":"del","c":"users","k":"alice","crc":"…"}
//! ```
//!
//! # Replay
//!
//! Opening reads the file once, line by line, and keeps for each live `(collection, key)` the
//! offset and length of its `put` line, its version and expiry — the values stay on disk and are
//! read with one positioned read each. A batch counts only once all its `n` lines are read.
//! A damaged or incomplete **last** line (or an incomplete last batch) is the trace of a write
//! that was interrupted and never acknowledged: it is cut off. A damaged line with valid data
//! after it is `ErrorKind::Corrupt` (or skipped with
//! `repair=true`).

use std::fmt::Write as _;

use kv_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

/// The format version in the header line.
pub const FORMAT_VERSION: u64 = 1;

/// The kinds of line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Op {
    Header,
    Put,
    Del,
    Clear,
    Batch,
}

/// A line to write (borrowed fields, in output order).
#[derive(Serialize)]
pub(crate) struct LineOut<'a> {
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ver: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ct: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<&'a str>,
}

impl LineOut<'_> {
    pub(crate) fn new(op: Op) -> Self {
        LineOut {
            op,
            format: None,
            next_version: None,
            n: None,
            c: None,
            k: None,
            ver: None,
            ct: None,
            exp: None,
            v: None,
            b: None,
        }
    }
}

/// A line read back. Unknown members are ignored; the value members are read only when the
/// value is wanted ([`ValueIn`]).
#[derive(Deserialize, Debug)]
pub(crate) struct LineIn {
    pub op: Op,
    #[serde(default)]
    pub format: Option<u64>,
    #[serde(default)]
    pub next_version: Option<u64>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub c: Option<String>,
    #[serde(default)]
    pub k: Option<String>,
    #[serde(default)]
    pub ver: Option<u64>,
    #[serde(default)]
    pub exp: Option<i64>,
}

/// A put line with its value.
#[derive(Deserialize, Debug)]
pub(crate) struct ValueIn {
    pub op: Op,
    #[serde(default)]
    pub c: Option<String>,
    #[serde(default)]
    pub k: Option<String>,
    #[serde(default)]
    pub ver: Option<u64>,
    #[serde(default)]
    pub ct: Option<i64>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub v: Option<String>,
    #[serde(default)]
    pub b: Option<String>,
}

const CRC_SUFFIX_LEN: usize = 17; // "crc":"XXXXXXXX"}

/// Serializes a line, adds its CRC and the newline.
pub(crate) fn encode_line(line: &LineOut<'_>, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    serde_json::to_writer(&mut *out, line).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            format!("cannot encode a log line: {e}"),
        )
    })?;
    // `{...}` → `{...,` then the CRC member.
    out.pop();
    out.push(b',');
    let crc = crc32(&out[start..]);
    let mut tail = String::with_capacity(CRC_SUFFIX_LEN + 1);
    let _ = writeln!(tail, "\"crc\":\"{crc:08x}\"}}");
    out.extend_from_slice(tail.as_bytes());
    Ok(())
}

/// Checks a line's CRC (the line without its newline) and returns it for parsing.
pub(crate) fn verify(line: &[u8]) -> Result<&[u8]> {
    let corrupt = |what: &str| Error::new(ErrorKind::Corrupt, format!("damaged log line: {what}"));
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.len() < CRC_SUFFIX_LEN + 2 {
        return Err(corrupt("too short"));
    }
    let (body, suffix) = line.split_at(line.len() - CRC_SUFFIX_LEN);
    let hex = suffix
        .strip_prefix(b"\"crc\":\"")
        .and_then(|s| s.strip_suffix(b"\"}"))
        .ok_or_else(|| corrupt("no checksum"))?;
    let hex = std::str::from_utf8(hex).map_err(|_| corrupt("bad checksum"))?;
    let want = u32::from_str_radix(hex, 16).map_err(|_| corrupt("bad checksum"))?;
    if !body.ends_with(b",") || crc32(body) != want {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(line)
}

/// Verifies and parses a line.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T> {
    let line = verify(line)?;
    serde_json::from_slice(line).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("damaged log line: not a valid record ({e})"),
        )
    })
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3, the one of zlib and PNG).
///
/// ```
/// assert_eq!(kv_store_log::format::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, for values that are not UTF-8.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let bad = || Error::new(ErrorKind::Corrupt, "damaged log line: invalid base64 value");
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, chunk) in s.chunks(4).enumerate() {
        let last = i + 1 == s.len() / 4;
        let mut n = 0u32;
        let mut pad = 0;
        for (j, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if last && j >= 2 => {
                    pad += 1;
                    0
                }
                _ => return Err(bad()),
            };
            if pad > 0 && c != b'=' {
                return Err(bad());
            }
            n = (n << 6) | u32::from(v);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            let enc = base64_encode(&data);
            assert_eq!(base64_decode(&enc).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        for bad in ["Zm9", "Zm=v", "====", "Z!9v"] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_check_their_crc() {
        let mut buf = Vec::new();
        let mut line = LineOut::new(Op::Put);
        line.c = Some("c");
        line.k = Some("k\0\n");
        line.ver = Some(3);
        line.v = Some("v\"x");
        encode_line(&line, &mut buf).unwrap();
        assert!(buf.ends_with(b"\"}\n"));
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        let back: LineIn = parse(&buf).unwrap();
        assert_eq!(back.k.as_deref(), Some("k\0\n"));
        assert_eq!(back.ver, Some(3));
        let mut bad = buf.clone();
        bad[10] ^= 1;
        assert!(parse::<LineIn>(&bad).is_err());
        assert!(parse::<LineIn>(&buf[..buf.len() - 3]).is_err());
        assert!(parse::<LineIn>(b"").is_err());
        assert!(parse::<LineIn>(b"\xff\xfe garbage").is_err());
    }
}
