//! How entries map onto PostgreSQL: one table per store, one row per entry.
//!
//! ```sql
//! CREATE TABLE kv_store (
//!     collection TEXT COLLATE "C" NOT NULL,  -- the resolved collection name (see below)
//!     key        TEXT COLLATE "C" NOT NULL,  -- the user key (see below)
//!     value      JSON,                       -- the value, when it is JSON text (byte for byte)
//!     raw        BYTEA,                      -- the value, when it is anything else
//!     expires_at TIMESTAMPTZ,                -- NULL: never expires
//!     created_at TIMESTAMPTZ NOT NULL,
//!     version    BIGINT      NOT NULL,       -- nextval('kv_store_version'), for compare-and-swap
//!     PRIMARY KEY (collection, key),
//!     CONSTRAINT kv_store_one_value CHECK (num_nonnulls(value, raw) = 1)
//! );
//! CREATE INDEX kv_store_expires_at ON kv_store (expires_at) WHERE expires_at IS NOT NULL;
//! CREATE SEQUENCE kv_store_version;
//! COMMENT ON TABLE kv_store IS 'kv-store-postgres format 1';
//! ```
//!
//! - **Names.** `collection` and `key` hold the names as written, with one exception:
//!   PostgreSQL text cannot hold the NUL character, so NUL is stored as the two characters
//!   U+0001 U+0001 and U+0001 itself as U+0001 U+0002 ([`encode_name`]). Every other string
//!   is stored unchanged, the mapping is injective (two different names never collide) and it
//!   keeps the byte order, so scans stay ordered. `COLLATE "C"` makes comparisons byte-wise
//!   (UTF-8 byte order = the kv scan order), whatever the database's default collation.
//! - **Values.** When the value is UTF-8 JSON text that PostgreSQL's `jsonb` also accepts (no
//!   `\u0000` escape, no lone surrogate), it goes to `value`, of type `json`, which keeps the
//!   text exactly as written — so `get` returns the same bytes and SQL can query it
//!   (`value->>'name'`, `value::jsonb @> '{"a":1}'`, an expression index on `(value::jsonb)`).
//!   `jsonb` itself would reorder keys and reformat numbers and whitespace, so a value could
//!   not come back byte for byte. Everything else (postcard, MessagePack, images, plain text)
//!   goes to `raw`. Exactly one of the two is set (the `CHECK` constraint); a row that breaks
//!   this (written by someone else's SQL with the constraint dropped) reads as
//!   [`ErrorKind::Corrupt`].
//! - **Expiry** is filtered in every statement with `(expires_at IS NULL OR expires_at > $now)`,
//!   where `$now` is the **client's clock** (the same clock that computed `expires_at` at the
//!   put): an expired row is never returned, counted, listed or treated as present by a
//!   conditional put. `cull` deletes the rows with `expires_at <= $now`. Several clients
//!   sharing a table should keep their clocks in sync (NTP); a skew of `d` moves every
//!   expiry seen by the skewed client by `d`.
//! - **Versions** come from the table's sequence, so they never repeat, also after a delete
//!   (no ABA for compare-and-swap); compare-and-swap is one conditional `UPDATE ... WHERE
//!   version = $v`, put-if-absent one `INSERT ... ON CONFLICT DO UPDATE ... WHERE <the old
//!   row expired>`.
//! - **Format marker.** The table comment names the format; an existing table without it (not
//!   a kv table) or with another format is refused at connect with
//!   [`ErrorKind::Config`].

use kv_core::{Error, ErrorKind, Result};

/// The default table.
pub const DEFAULT_TABLE: &str = "kv_store";

/// The format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The longest table name accepted (so that `<table>_expires_at`, `<table>_version` and
/// `<table>_one_value` stay within PostgreSQL's 63-byte identifiers).
pub const MAX_TABLE_NAME: usize = 48;

/// The longest key accepted, in UTF-8 bytes after NUL escaping. A B-tree index entry in
/// PostgreSQL is limited to about 2.7 kB, and the primary key holds collection and key.
pub const MAX_KEY_LEN: usize = 1024;

/// The longest collection name accepted, in UTF-8 bytes after NUL escaping. Together with
/// [`MAX_KEY_LEN`] this keeps every primary-key entry below PostgreSQL's B-tree limit (2704
/// bytes), even for incompressible names.
pub const MAX_COLLECTION_LEN: usize = 1600;

/// The table comment that marks a kv table of [`FORMAT_VERSION`].
pub fn format_comment() -> String {
    format!("kv-store-postgres format {FORMAT_VERSION}")
}

/// Checks a table name: `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_TABLE_NAME`] characters. The
/// name is always quoted in SQL, so its case is kept.
///
/// ```
/// use kv_store_postgres::format::check_table_name;
///
/// assert!(check_table_name("kv_store").is_ok());
/// assert!(check_table_name("1x").is_err());
/// assert!(check_table_name("a;drop").is_err());
/// ```
pub fn check_table_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_TABLE_NAME;
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "table name {name:?} is not valid: use [A-Za-z_][A-Za-z0-9_]*, at most {MAX_TABLE_NAME} characters"
            ),
        ))
    }
}

const ESC: char = '\u{1}';

/// Maps a name onto PostgreSQL text: NUL → U+0001 U+0001, U+0001 → U+0001 U+0002, every
/// other character unchanged. Injective and order-preserving.
///
/// ```
/// use kv_store_postgres::format::{decode_name, encode_name};
///
/// assert_eq!(encode_name("alice"), "alice");
/// assert_eq!(encode_name("a\0b"), "a\u{1}\u{1}b");
/// assert_eq!(decode_name(&encode_name("\u{1}\0")).unwrap(), "\u{1}\0");
/// ```
pub fn encode_name(name: &str) -> std::borrow::Cow<'_, str> {
    // A byte scan: NUL and U+0001 are ASCII, never part of a longer UTF-8 sequence (a `char`
    // set pattern decodes every character and showed in the put profile).
    if !name.bytes().any(|b| b == b'\0' || b == ESC as u8) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        match c {
            '\0' => out.push_str("\u{1}\u{1}"),
            ESC => out.push_str("\u{1}\u{2}"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The inverse of [`encode_name`]; `None` for text that [`encode_name`] cannot produce.
pub fn decode_name(stored: &str) -> Option<String> {
    if !stored.contains(ESC) {
        return Some(stored.to_owned());
    }
    let mut out = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        if c == ESC {
            match chars.next() {
                Some('\u{1}') => out.push('\0'),
                Some('\u{2}') => out.push(ESC),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// True if `value` goes to the `json` column: UTF-8 JSON text that `jsonb` also accepts.
pub fn is_json(value: &[u8]) -> bool {
    // Cheapest test first: a value whose first non-blank byte cannot start JSON text is
    // rejected without the parse (which would build and free an error), and the scan for
    // `\u0000` (which jsonb refuses; it reads every byte) runs only on parsed JSON. serde_json
    // rejects lone surrogate escapes and numbers beyond f64, as jsonb does.
    let first = value
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    matches!(
        first,
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    ) && serde_json::from_slice::<serde_json::Value>(value).is_ok()
        && !value.windows(6).any(|w| w == b"\\u0000")
}

/// The SQL of one table, built once per store.
#[derive(Debug)]
pub(crate) struct Sql {
    pub create: String,
    pub comment: String,
    pub get: String,
    pub get_many: String,
    pub ttl: String,
    pub upsert: String,
    pub insert_if_absent: String,
    pub update_if_version: String,
    pub put_many: String,
    pub delete: String,
    pub delete_many: String,
    pub scan_keys: String,
    pub scan_entries: String,
    pub collections: String,
    pub clear: String,
    pub drop: String,
    pub cull: String,
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > $now)";

impl Sql {
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let seq = format!("\"{table}_version\"");
        let cols = "value, raw, expires_at, created_at, version";
        let live = |n: usize| LIVE.replace("$now", &format!("${n}"));
        let set_all = "value = EXCLUDED.value, raw = EXCLUDED.raw, expires_at = EXCLUDED.expires_at, \
                       created_at = EXCLUDED.created_at, version = EXCLUDED.version";
        Sql {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 collection TEXT COLLATE \"C\" NOT NULL, \
                 key TEXT COLLATE \"C\" NOT NULL, \
                 value JSON, raw BYTEA, \
                 expires_at TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL, \
                 version BIGINT NOT NULL, \
                 PRIMARY KEY (collection, key), \
                 CONSTRAINT \"{table}_one_value\" CHECK (num_nonnulls(value, raw) = 1)); \
                 CREATE INDEX IF NOT EXISTS \"{table}_expires_at\" ON {t} (expires_at) \
                 WHERE expires_at IS NOT NULL; \
                 CREATE SEQUENCE IF NOT EXISTS {seq};"
            ),
            comment: format!("COMMENT ON TABLE {t} IS '{}'", format_comment()),
            get: format!(
                "SELECT {cols} FROM {t} WHERE collection = $1 AND key = $2 AND {}",
                live(3)
            ),
            get_many: format!(
                "SELECT key, {cols} FROM {t} WHERE collection = $1 AND key = ANY($2) AND {}",
                live(3)
            ),
            ttl: format!(
                "SELECT expires_at, num_nonnulls(value, raw) FROM {t} \
                 WHERE collection = $1 AND key = $2 AND {}",
                live(3)
            ),
            upsert: format!(
                "INSERT INTO {t} (collection, key, {cols}) \
                 VALUES ($1, $2, $3, $4, $5, $6, nextval('{seq}')) \
                 ON CONFLICT (collection, key) DO UPDATE SET {set_all}"
            ),
            // An expired row counts as absent: it is replaced.
            insert_if_absent: format!(
                "INSERT INTO {t} AS old (collection, key, {cols}) \
                 VALUES ($1, $2, $3, $4, $5, $6, nextval('{seq}')) \
                 ON CONFLICT (collection, key) DO UPDATE SET {set_all} \
                 WHERE old.expires_at IS NOT NULL AND old.expires_at <= $7 \
                 RETURNING 1"
            ),
            update_if_version: format!(
                "UPDATE {t} SET value = $3, raw = $4, expires_at = $5, created_at = $6, \
                 version = nextval('{seq}') \
                 WHERE collection = $1 AND key = $2 AND version = $7 AND {}",
                live(8)
            ),
            put_many: format!(
                "INSERT INTO {t} (collection, key, {cols}) \
                 SELECT $1, u.k, u.v, u.r, $5, $6, nextval('{seq}') \
                 FROM unnest($2::text[], $3::json[], $4::bytea[]) AS u(k, v, r) \
                 ON CONFLICT (collection, key) DO UPDATE SET {set_all}"
            ),
            delete: format!(
                "DELETE FROM {t} WHERE collection = $1 AND key = $2 RETURNING {}",
                live(3)
            ),
            delete_many: format!(
                "WITH d AS (DELETE FROM {t} WHERE collection = $1 AND key = ANY($2) \
                 RETURNING expires_at) SELECT count(*) FROM d WHERE {}",
                live(3)
            ),
            scan_keys: format!(
                "SELECT key FROM {t} WHERE collection = $1 AND {} \
                 AND key >= $3 AND ($4::text IS NULL OR key < $4) \
                 AND ($5::text IS NULL OR key > $5) ORDER BY key LIMIT $6",
                live(2)
            ),
            scan_entries: format!(
                "SELECT key, {cols} FROM {t} WHERE collection = $1 AND {} \
                 AND key >= $3 AND ($4::text IS NULL OR key < $4) \
                 AND ($5::text IS NULL OR key > $5) ORDER BY key LIMIT $6",
                live(2)
            ),
            collections: format!(
                "SELECT DISTINCT collection FROM {t} WHERE {} ORDER BY collection",
                live(1)
            ),
            clear: format!(
                "WITH d AS (DELETE FROM {t} WHERE collection = $1 RETURNING expires_at) \
                 SELECT count(*) FROM d WHERE {}",
                live(2)
            ),
            drop: format!("DROP TABLE IF EXISTS {t}; DROP SEQUENCE IF EXISTS {seq};"),
            cull: format!("DELETE FROM {t} WHERE expires_at <= $1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_order() {
        let names = [
            "",
            "\0",
            "\u{1}",
            "\u{2}",
            "a",
            "a\0",
            "a\u{1}b",
            "\0\0",
            "é",
            "\u{10FFFF}",
        ];
        for n in names {
            assert_eq!(decode_name(&encode_name(n)).as_deref(), Some(n));
            assert!(!encode_name(n).contains('\0'));
        }
        for a in names {
            for b in names {
                assert_eq!(
                    a.cmp(b),
                    encode_name(a).as_ref().cmp(encode_name(b).as_ref()),
                    "{a:?} {b:?}"
                );
                assert_eq!(
                    b.starts_with(a),
                    encode_name(b).starts_with(encode_name(a).as_ref()),
                    "{a:?} {b:?}"
                );
            }
        }
        assert_eq!(decode_name("\u{1}x"), None);
        assert_eq!(decode_name("\u{1}"), None);
    }

    #[test]
    fn json_detection() {
        assert!(is_json(br#"{"a": 1}"#));
        assert!(is_json(b"1"));
        assert!(is_json(b" \"x\" "));
        assert!(!is_json(b""));
        assert!(!is_json(b"{"));
        assert!(!is_json(br#""\u0000""#));
        assert!(!is_json(br#""\ud800""#));
        assert!(!is_json(&[0xff, 0xfe]));
        assert!(!is_json(b"  \n"));
        assert!(!is_json(b"xyz"));
        assert!(is_json(b"\n\t[true, false, null, -1.5e3]"));
        assert!(!is_json(b"nul"));
        assert!(is_json(b"null"));
    }
}
