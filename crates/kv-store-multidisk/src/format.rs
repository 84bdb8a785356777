//! How collections map to files, and entries to redb tables.
//!
//! # Directory layout
//!
//! | file | content |
//! |---|---|
//! | `_kv.lock` | empty; locked (`flock`-style, `File::try_lock`) while a store has the directory open |
//! | `_kv_meta.redb` | the store's metadata: table `kv:meta` (`&str` → `u64`): `format` = 1, `next_version` = the version counter's reserve |
//! | `c_<escaped>.redb` | one collection whose escaped name is at most [`MAX_PLAIN_NAME`] bytes |
//! | `h_<sha256>.redb` | one collection with a longer name: 64 lowercase hex digits of SHA-256 over the UTF-8 name |
//!
//! # File names
//!
//! [`file_name`] escapes a collection name byte by byte: `a`–`z`, `0`–`9`, `_` and `-` are kept,
//! every other byte (upper-case letters, `.`, `/`, `\`, `%`, NUL, spaces, each byte of a
//! multi-byte UTF-8 character) becomes `%XX` with two upper-case hex digits. The escaping is
//! injective (a `%` in the output always starts an escape), the output contains no `.` or
//! path separator (so `..`, `/a` or `C:\x` can never leave the directory) and no upper-case
//! letter (so two names never meet on a case-insensitive file system). If the escaped form is
//! longer than [`MAX_PLAIN_NAME`] bytes the file is named by the SHA-256 of the name instead,
//! which keeps every file name under 80 bytes (file systems allow 255). The `c_` and `h_`
//! prefixes keep the two forms apart, and neither can be `_kv.lock` or `_kv_meta.redb`.
//!
//! Every collection file also stores its collection name (table `kv:meta`, key `collection`),
//! which is how [`collections`](kv_core::KvStore::collections_opts) lists hashed names, and
//! how a store checks that a file really holds the collection it expects.
//!
//! # Collection files
//!
//! | redb table | key type | value type | content |
//! |---|---|---|---|
//! | `kv:data` | `&str` | `&[u8]` | the user key as is → the [`kv_core::envelope`] (`expires_at`, `created_at`, `version`) followed by the raw value |
//! | `kv:meta` | `&str` | `&str` | `format` → `"1"`; `collection` → the collection's name |
//!
//! Keys are redb `&str` keys, ordered by their UTF-8 bytes (the order of kv's ordered scans).
//!
//! # Versions
//!
//! Versions (for compare-and-swap) come from one store-wide counter, so a version is never
//! reused, not even after a `clear`, a `destroy` or a crash: `_kv_meta.redb` holds a reserve
//! that every version handed out is below; the store raises it by [`VERSION_BLOCK`] with a
//! durable commit *before* it hands out versions beyond it.

use std::fmt::Write as _;

use redb::TableDefinition;
use sha2::{Digest, Sha256};

/// The lock file in the store's directory.
pub const LOCK_FILE: &str = "_kv.lock";
/// The store's metadata file.
pub const META_FILE: &str = "_kv_meta.redb";
/// The prefix of a collection file named by its escaped name.
pub const PLAIN_PREFIX: &str = "c_";
/// The prefix of a collection file named by the hash of its name.
pub const HASHED_PREFIX: &str = "h_";
/// The extension of collection files.
pub const FILE_EXT: &str = ".redb";
/// The longest escaped name used as a file name; longer names are hashed.
pub const MAX_PLAIN_NAME: usize = 120;
/// The data table of a collection file.
pub const DATA_TABLE_NAME: &str = "kv:data";
/// The metadata table (of the store's metadata file and of every collection file).
pub const META_TABLE_NAME: &str = "kv:meta";
/// The key of the format version in the metadata tables.
pub const META_FORMAT_KEY: &str = "format";
/// The key of the collection name in a collection file's metadata table.
pub const META_COLLECTION_KEY: &str = "collection";
/// The key of the version counter's reserve in the store's metadata file.
pub const META_NEXT_VERSION_KEY: &str = "next_version";
/// The on-disk format version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// How many versions the store reserves at once.
pub const VERSION_BLOCK: u64 = 1024;

/// The data table of a collection file, for reading a file with redb directly.
pub const DATA_TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new(DATA_TABLE_NAME);
/// The metadata table of a collection file.
pub(crate) const FILE_META_TABLE: TableDefinition<'static, &'static str, &'static str> =
    TableDefinition::new(META_TABLE_NAME);
/// The metadata table of the store's metadata file.
pub(crate) const STORE_META_TABLE: TableDefinition<'static, &'static str, u64> =
    TableDefinition::new(META_TABLE_NAME);

/// The file that holds a collection (resolved: never empty).
///
/// ```
/// use kv_store_multidisk::format::file_name;
///
/// assert_eq!(file_name("users"), "c_users.redb");
/// assert_eq!(file_name("Users"), "c_%55sers.redb");
/// assert_eq!(file_name(".."), "c_%2E%2E.redb");
/// assert_eq!(file_name("a/b"), "c_a%2Fb.redb");
/// assert!(file_name(&"x".repeat(1500)).starts_with("h_"));
/// ```
pub fn file_name(collection: &str) -> String {
    let mut escaped = String::with_capacity(collection.len() + 8);
    for &b in collection.as_bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' {
            escaped.push(char::from(b));
        } else {
            let _ = write!(escaped, "%{b:02X}");
        }
    }
    if escaped.len() <= MAX_PLAIN_NAME {
        format!("{PLAIN_PREFIX}{escaped}{FILE_EXT}")
    } else {
        let digest = Sha256::digest(collection.as_bytes());
        let mut name = String::with_capacity(HASHED_PREFIX.len() + 64 + FILE_EXT.len());
        name.push_str(HASHED_PREFIX);
        for b in digest {
            let _ = write!(name, "{b:02x}");
        }
        name.push_str(FILE_EXT);
        name
    }
}

/// True if `name` has the form of a collection file name ([`file_name`]'s output).
///
/// ```
/// use kv_store_multidisk::format::{file_name, is_collection_file};
///
/// assert!(is_collection_file(&file_name("a")));
/// assert!(!is_collection_file("_kv_meta.redb"));
/// assert!(!is_collection_file("notes.txt"));
/// ```
pub fn is_collection_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(FILE_EXT) else {
        return false;
    };
    if let Some(hex) = stem.strip_prefix(HASHED_PREFIX) {
        return hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    stem.strip_prefix(PLAIN_PREFIX).is_some_and(|e| {
        !e.is_empty()
            && e.len() <= MAX_PLAIN_NAME
            && e.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || b == b'-'
                    || b == b'%'
                    || b.is_ascii_uppercase()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_distinct() {
        let names = [
            "a", "A", "..", ".", "/", "a/b", "a\\b", "\0", " ", "a b", "é", "%", "%25", "c_x",
            "h_x", "_kv", "::", "a::b", "a%2Fb",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            let f = file_name(n);
            assert!(is_collection_file(&f), "{n:?} -> {f}");
            assert!(!f.contains('/') && !f.contains('\\') && !f.contains('\0'));
            assert_eq!(f.matches('.').count(), 1, "{f}");
            assert!(f.len() < 200);
            assert!(seen.insert(f.to_lowercase()), "{n:?} collides");
        }
        let long = file_name(&"é".repeat(1500));
        assert!(long.starts_with(HASHED_PREFIX) && long.len() == 2 + 64 + 5);
        assert_ne!(long, file_name(&"é".repeat(1501)));
        assert_ne!(file_name(LOCK_FILE), LOCK_FILE);
        assert_ne!(file_name(META_FILE), META_FILE);
    }
}
