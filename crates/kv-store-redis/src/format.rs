//! How entries map onto Redis keys and values.
//!
//! # Native layout (default)
//!
//! - **Key**: `{` + esc(namespace) + `:` + esc(collection) + `}` + key, where esc replaces
//!   `%` by `%25`, `{` by `%7B`, `}` by `%7D` and `:` by `%3A`. The part in braces is a Redis
//!   Cluster *hash tag*: every key of one collection hashes to the same slot, so a collection
//!   lives on one primary, and batches (MGET, MULTI/EXEC pipelines), Lua scripts and scans of a
//!   collection are single-node operations even on a cluster. The key itself follows the
//!   closing brace verbatim; since the tag never contains `}`, two different
//!   (namespace, collection, key) triples never give the same Redis key.
//! - **Value**: a Redis string holding the kv envelope ([`kv_core::envelope`]: magic `0xC1`,
//!   format 1, flags, then `expires_at`, `created_at` (µs since the Unix epoch, i64 LE) and
//!   `version` (u64 LE)) followed by the value bytes.
//! - **TTL**: `SET ... PX ms` with the TTL rounded **up** to whole milliseconds; `expires_at`
//!   in the envelope is what reads report.
//! - **Version**: a random 64-bit number drawn for every write; compare-and-swap is a Lua
//!   script that compares it on the server.
//!
//! # py-key-value layout (`format=pykv`)
//!
//! Key `COLLECTION::KEY` (prefixed with `NAMESPACE:` when a namespace is set), value = the
//! JSON document of py-key-value ([`kv_core::format::pykv`]), TTL as `PX`. No version field,
//! so no compare-and-swap.

use bytes::Bytes;
use kv_core::envelope::{self, Meta};
use kv_core::format::pykv;
use kv_core::{Entry, Result, Timestamp};

/// Escapes a namespace or collection for use inside the hash tag.
pub fn escape_tag_part(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    push_escaped(&mut out, s);
    // Only ASCII bytes are escaped, so whole characters are kept: still UTF-8. The lossy
    // branch is unreachable; it is there so that no input can panic or come out empty.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Reverses [`escape_tag_part`].
pub fn unescape_tag_part(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "7B" => '{',
            "7D" => '}',
            "3A" => ':',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Escapes glob metacharacters for `SCAN MATCH` (`*`, `?`, `[`, `]`, `\`, `^`, `-`).
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The prefix every key of the namespace starts with (native layout).
pub fn namespace_prefix(namespace: &str) -> String {
    format!("{{{}:", escape_tag_part(namespace))
}

/// The prefix every key of the collection starts with (native layout): the hash tag.
pub fn collection_prefix(namespace: &str, collection: &str) -> String {
    let mut out = Vec::with_capacity(namespace.len() + collection.len() + 3);
    push_tag(&mut out, namespace, collection);
    // Only ASCII escapes were added to UTF-8 input.
    String::from_utf8(out).unwrap_or_default()
}

/// The Redis key of an entry (native layout): the collection's hash tag, then the key — built
/// in one allocation, as it is on every operation's hot path.
///
/// ```
/// use kv_store_redis::format::{collection_prefix, native_key};
/// assert_eq!(native_key("kv", "users", "alice"), b"{kv:users}alice");
/// assert_eq!(native_key("kv", "a:b", "k"), [collection_prefix("kv", "a:b").as_bytes(), b"k"].concat());
/// ```
pub fn native_key(namespace: &str, collection: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(namespace.len() + collection.len() + key.len() + 3);
    push_tag(&mut out, namespace, collection);
    out.extend_from_slice(key.as_bytes());
    out
}

fn push_tag(out: &mut Vec<u8>, namespace: &str, collection: &str) {
    out.push(b'{');
    push_escaped(out, namespace);
    out.push(b':');
    push_escaped(out, collection);
    out.push(b'}');
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    kv_core::format::percent::push_escaped(out, s, |b| !matches!(b, b'%' | b'{' | b'}' | b':'));
}

/// The collection of a native key, given the namespace prefix.
pub fn collection_of(ns_prefix: &str, raw_key: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw_key).ok()?;
    let rest = s.strip_prefix(ns_prefix)?;
    let end = rest.find('}')?;
    unescape_tag_part(&rest[..end])
}

/// Separator of the py-key-value layout.
pub const PYKV_SEP: &str = "::";

/// The prefix of every key of a collection in the py-key-value layout.
pub fn pykv_collection_prefix(namespace: &str, collection: &str) -> String {
    if namespace.is_empty() {
        format!("{collection}{PYKV_SEP}")
    } else {
        format!("{namespace}:{collection}{PYKV_SEP}")
    }
}

/// The collection of a py-key-value key.
pub fn pykv_collection_of(namespace: &str, raw_key: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw_key).ok()?;
    let rest = if namespace.is_empty() {
        s
    } else {
        s.strip_prefix(namespace)?.strip_prefix(':')?
    };
    let (c, _) = rest.split_once(PYKV_SEP)?;
    Some(c.to_owned())
}

/// Encodes a native value.
pub fn encode_native(
    value: &[u8],
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    version: u64,
) -> Vec<u8> {
    envelope::encode(
        &Meta {
            expires_at,
            created_at: Some(created_at),
            version: Some(version),
        },
        value,
    )
}

/// Decodes a native value; `None` if it has expired at `now`.
pub fn decode_native(raw: Bytes, now: Timestamp) -> Result<Option<Entry>> {
    let (meta, value) = envelope::decode(raw)?;
    if meta.is_expired_at(now) {
        return Ok(None);
    }
    Ok(Some(meta.into_entry(value)))
}

/// Encodes a py-key-value document (the value must be a JSON object).
pub fn encode_pykv(
    value: &[u8],
    collection: &str,
    key: &str,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<Vec<u8>> {
    let mut doc = pykv::encode_value(value)?;
    doc.collection = Some(collection.to_owned());
    doc.key = Some(key.to_owned());
    doc.created_at = Some(created_at);
    doc.expires_at = expires_at;
    Ok(doc.to_json().into_bytes())
}

/// Decodes a py-key-value document; `None` if it has expired at `now`.
pub fn decode_pykv(raw: &[u8], now: Timestamp) -> Result<Option<Entry>> {
    let doc = pykv::read_document(raw)?;
    if doc.expires_at.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    Ok(Some(
        Entry::new(pykv::decode_value(&doc))
            .with_created_at(doc.created_at)
            .with_expires_at(doc.expires_at),
    ))
}

/// The Lua script of the conditional writes of the native layout.
///
/// `KEYS[1]` = key; `ARGV[1]` = `nx` (put-if-absent) or `cas` (compare-and-swap), `ARGV[2]` =
/// now (µs since the epoch, the client's clock, so the script agrees with reads about what
/// has expired), `ARGV[3]` = expected version (8 bytes LE), `ARGV[4]` = new stored value,
/// `ARGV[5]` = PX milliseconds or empty. Returns 1 if written, 0 if the condition failed,
/// -1 if the stored value is not a kv envelope.
pub const CONDITIONAL_PUT_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
local live = false
local ver = false
if cur then
  local n = string.len(cur)
  if n < 3 or string.byte(cur, 1) ~= 193 or string.byte(cur, 2) ~= 1 then
    return -1
  end
  local flags = string.byte(cur, 3)
  local pos = 4
  live = true
  if flags % 2 == 1 then
    if n < pos + 7 then return -1 end
    local exp = 0
    for i = 7, 0, -1 do exp = exp * 256 + string.byte(cur, pos + i) end
    if exp <= tonumber(ARGV[2]) then live = false end
    pos = pos + 8
  end
  if math.floor(flags / 2) % 2 == 1 then pos = pos + 8 end
  if math.floor(flags / 4) % 2 == 1 then
    if n < pos + 7 then return -1 end
    ver = string.sub(cur, pos, pos + 7)
  end
end
if ARGV[1] == 'nx' then
  if live then return 0 end
else
  if (not live) or ver ~= ARGV[3] then return 0 end
end
if ARGV[5] == '' then
  redis.call('SET', KEYS[1], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
end
return 1
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_escape_round_trips() {
        for s in ["", "a", "a:b", "{x}", "%7B", "é:%}{", "::"] {
            let e = escape_tag_part(s);
            assert!(!e.contains(['{', '}', ':']), "{e}");
            assert_eq!(unescape_tag_part(&e).as_deref(), Some(s));
        }
        assert_eq!(unescape_tag_part("%zz"), None);
    }

    #[test]
    fn keys_never_collide() {
        let k1 = format!("{}{}", collection_prefix("kv", "a}"), "b");
        let k2 = format!("{}{}", collection_prefix("kv", "a"), "}b");
        assert_ne!(k1, k2);
        let ns = namespace_prefix("kv");
        assert_eq!(collection_of(&ns, k1.as_bytes()).as_deref(), Some("a}"));
        assert_eq!(collection_of(&ns, k2.as_bytes()).as_deref(), Some("a"));
        assert_eq!(collection_prefix("kv", "users"), "{kv:users}");
    }

    #[test]
    fn glob() {
        assert_eq!(glob_escape("a*b?[c]\\d^-"), "a\\*b\\?\\[c\\]\\\\d\\^\\-");
    }

    #[test]
    fn native_round_trip() {
        let now = Timestamp::from_unix_micros(1_000_000);
        let raw = encode_native(b"v", now, Some(Timestamp::from_unix_micros(2_000_000)), 7);
        let e = decode_native(Bytes::from(raw.clone()), now)
            .unwrap()
            .unwrap();
        assert_eq!(&e.value[..], b"v");
        assert_eq!(e.version.and_then(|v| v.as_u64()), Some(7));
        assert!(
            decode_native(Bytes::from(raw), Timestamp::from_unix_micros(2_000_000))
                .unwrap()
                .is_none()
        );
        assert!(decode_native(Bytes::from_static(b"junk"), now).is_err());
    }
}
