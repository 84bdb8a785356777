//! How entries map to redb: one table per collection, the native kv envelope as value.
//!
//! # Tables
//!
//! | redb table | key type | value type | content |
//! |---|---|---|---|
//! | `c:<collection>` | `&str` | `&[u8]` | one collection: the user key as is → envelope + value |
//! | `kv:meta` | `&str` | `u64` | `format` → [`FORMAT_VERSION`]; `next_version` → the version counter's reserve |
//!
//! A collection's table name is its name behind the prefix `c:` ([`table_name`]). redb takes
//! any non-empty UTF-8 table name with no length limit (checked with unicode, NUL, `/`, `::`
//! and 70 000-character names), and the prefix makes every name non-empty, so names are kept
//! verbatim: the mapping is injective without escaping or hashing, and tables of other prefixes
//! (`kv:`) can never collide with a collection. Tables with neither prefix are not the store's:
//! it never reads, lists or deletes them, so a kv store can share a redb file with other
//! tables. An empty collection name is resolved to the store's default collection before it
//! is mapped.
//!
//! Keys are stored as redb `&str` keys, which redb orders by their UTF-8 bytes — the order of
//! kv's ordered scans — so a scan is one redb range.
//!
//! # Values
//!
//! Every value is the native envelope of [`kv_core::envelope`] (magic `0xC1`, format `0x01`,
//! flags, then `expires_at`, `created_at` and `version` as 8-byte little-endian fields)
//! followed by the raw value. This store always writes `created_at` and `version`, and
//! `expires_at` when the entry has a TTL: 19 or 27 bytes of header. The envelope is written
//! straight into the space redb reserves for the value (no intermediate buffer).
//!
//! # Versions
//!
//! Every write gets a version from a store-wide counter, for compare-and-swap. So that a
//! version is never given twice — not even after a crash or a reopen — `kv:meta` holds
//! `next_version`, a number every version handed out so far is below. The store reserves
//! versions in blocks of [`VERSION_BLOCK`]: a write whose versions would pass the reserve raises
//! it, in the same write transaction, so the counter costs one extra table write per block
//! rather than per write. A reopened store starts at the reserve; the versions of a block that
//! were never used are skipped, which is harmless because versions are opaque.
//!
//! # Format version
//!
//! `kv:meta["format"]` is [`FORMAT_VERSION`] (1). A store refuses to open a file with another
//! format version (ErrorKind::Config), so a future layout change can never be misread.

use redb::TableDefinition;

/// The prefix of every collection's table name.
///
/// ```
/// assert!(kv_store_disk::format::table_name("x").starts_with(kv_store_disk::format::DATA_TABLE_PREFIX));
/// ```
pub const DATA_TABLE_PREFIX: &str = "c:";

/// The name of the store's metadata table.
///
/// ```
/// assert_eq!(kv_store_disk::format::collection_of(kv_store_disk::format::META_TABLE_NAME), None);
/// ```
pub const META_TABLE_NAME: &str = "kv:meta";

/// The key of the format version in the metadata table.
///
/// ```
/// assert_eq!(kv_store_disk::format::META_FORMAT_KEY, "format");
/// ```
pub const META_FORMAT_KEY: &str = "format";

/// The key of the version counter's reserve in the metadata table.
///
/// ```
/// assert_eq!(kv_store_disk::format::META_NEXT_VERSION_KEY, "next_version");
/// ```
pub const META_NEXT_VERSION_KEY: &str = "next_version";

/// The on-disk format version this crate reads and writes.
///
/// ```
/// assert_eq!(kv_store_disk::format::FORMAT_VERSION, 1);
/// ```
pub const FORMAT_VERSION: u64 = 1;

/// How many versions the store reserves in `kv:meta` at once.
///
/// ```
/// assert!(kv_store_disk::format::VERSION_BLOCK >= 1);
/// ```
pub const VERSION_BLOCK: u64 = 1024;

/// The metadata table.
pub(crate) const META_TABLE: TableDefinition<'static, &'static str, u64> =
    TableDefinition::new(META_TABLE_NAME);

/// The redb table that holds a collection (the collection must already be resolved: an empty
/// name means the store's default collection, see
/// [`StoreInfo::resolve`](kv_core::StoreInfo::resolve)).
///
/// ```
/// use kv_store_disk::format::table_name;
///
/// assert_eq!(table_name("users"), "c:users");
/// assert_eq!(table_name("a::b"), "c:a::b");
/// ```
pub fn table_name(collection: &str) -> String {
    let mut name = String::with_capacity(DATA_TABLE_PREFIX.len() + collection.len());
    name.push_str(DATA_TABLE_PREFIX);
    name.push_str(collection);
    name
}

/// The collection a redb table holds, or `None` if the table is not a collection's.
///
/// ```
/// use kv_store_disk::format::collection_of;
///
/// assert_eq!(collection_of("c:users"), Some("users"));
/// assert_eq!(collection_of("kv:meta"), None);
/// ```
pub fn collection_of(table: &str) -> Option<&str> {
    table.strip_prefix(DATA_TABLE_PREFIX)
}

/// The typed definition of a collection's table, from its [`table_name`]; for reading the file
/// with redb directly.
///
/// ```
/// use kv_store_disk::format::{data_table, table_name};
/// use redb::TableHandle;
///
/// let name = table_name("users");
/// assert_eq!(data_table(&name).name(), "c:users");
/// ```
pub fn data_table(table_name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(table_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_never_collide_with_meta() {
        for c in ["", "a", "a::b", "kv:meta", "c:", "é", "\0"] {
            let t = table_name(c);
            assert_eq!(collection_of(&t), Some(c));
            assert_ne!(t, META_TABLE_NAME);
        }
        assert_eq!(collection_of(META_TABLE_NAME), None);
    }
}
