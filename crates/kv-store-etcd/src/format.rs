//! How entries map onto etcd keys and values.
//!
//! # Keys
//! `PREFIX/ESC(collection)/KEY`: the collection has `%` written as `%25` and `/` as `%2F`, so
//! it never contains `/` and the first `/` after the prefix ends it — two different
//! `(collection, key)` pairs never share a key. The key is the kv key's UTF-8 bytes,
//! unchanged, so etcd's byte order is the kv key order and a prefix scan is a range.
//!
//! # Values
//! The kv native envelope ([`kv_core::envelope`], `expires_at` and `created_at`) followed by
//! the value bytes. The entry's version is the key's etcd `mod_revision`.

/// The etcd key prefix of a collection: `PREFIX/ESC(collection)/`.
pub fn collection_prefix(prefix: &str, collection: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + collection.len() + 2);
    out.extend_from_slice(prefix.as_bytes());
    out.push(b'/');
    for &b in collection.as_bytes() {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'/' => out.extend_from_slice(b"%2F"),
            _ => out.push(b),
        }
    }
    out.push(b'/');
    out
}

/// The collection of an escaped collection name.
pub fn unescape_collection(esc: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(esc.len());
    let mut i = 0;
    while i < esc.len() {
        if esc[i] == b'%' {
            match esc.get(i + 1..i + 3)? {
                b"25" => out.push(b'%'),
                b"2F" => out.push(b'/'),
                _ => return None,
            }
            i += 3;
        } else {
            out.push(esc[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The etcd key of an entry.
pub fn entry_key(prefix: &str, collection: &str, key: &str) -> Vec<u8> {
    let mut k = collection_prefix(prefix, collection);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The smallest byte string greater than every string starting with `p` (the range end of a
/// prefix), or `[0]` (etcd's "to the end") if there is none.
pub fn prefix_end(p: &[u8]) -> Vec<u8> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_never_collide() {
        assert_ne!(entry_key("p", "a/b", "c"), entry_key("p", "a", "b/c"));
        assert_ne!(entry_key("p", "a%2Fb", "c"), entry_key("p", "a/b", "c"));
        assert_eq!(unescape_collection(b"a%2Fb%25").as_deref(), Some("a/b%"));
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(&[0x61, 0xff]), b"b");
    }
}
