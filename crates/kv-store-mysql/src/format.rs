//! How entries map onto MySQL / MariaDB: one InnoDB table per store, one row per entry.
//!
//! ```sql
//! CREATE TABLE `kv_store` (
//!     collection VARBINARY(1536) NOT NULL,   -- UTF-8 bytes of the resolved collection name
//!     `key`      VARBINARY(1536) NOT NULL,   -- UTF-8 bytes of the key
//!     value      LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,  -- JSON text, exact
//!     raw        LONGBLOB NULL,              -- any other value
//!     expires_at BIGINT NULL,                -- µs since the Unix epoch (UTC), NULL = never
//!     created_at BIGINT NOT NULL,            -- µs since the Unix epoch (UTC)
//!     version    BIGINT UNSIGNED NOT NULL,   -- UUID_SHORT() of the last write
//!     PRIMARY KEY (collection, `key`),
//!     KEY `kv_store_expires_at` (expires_at)
//! ) ENGINE=InnoDB COMMENT='kv-store-mysql format 1';
//! ```
//!
//! - **Names** are `VARBINARY`: compared byte by byte (the kv scan order), no trailing-space
//!   padding, no case folding, NUL allowed — which no text collation offers on both MySQL 8
//!   and MariaDB. Read them in SQL with `` CAST(`key` AS CHAR CHARACTER SET utf8mb4) ``.
//! - **Values.** UTF-8 JSON text goes to `value`, a text column (not MySQL's `JSON` type,
//!   which MySQL 8 stores in a normalised binary form and could not return byte for byte);
//!   the JSON functions of both servers read it: `JSON_VALUE(value, '$.name')`,
//!   `JSON_EXTRACT(value, '$.age')`. JSON nested deeper than 32 levels (MariaDB's limit) goes
//!   to `raw`, with everything that is not JSON. A row with both or neither set reads as
//!   [`ErrorKind::Corrupt`].
//! - **Expiry** uses the client's clock, in microseconds, as the PostgreSQL store: every
//!   statement filters `(expires_at IS NULL OR expires_at > ?now)`.
//! - **Versions** are `UUID_SHORT()` values: unique per server (server id, server start time,
//!   a counter), so a version never comes back after a delete. Servers of one replication
//!   group need distinct `server_id`s (they need them anyway).

use kv_core::{Error, ErrorKind, Result};

/// The default table.
pub const DEFAULT_TABLE: &str = "kv_store";

/// The format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The longest table name accepted (MySQL identifiers take 64 characters; the index name
/// adds `_expires_at`).
pub const MAX_TABLE_NAME: usize = 48;

/// The longest key, in UTF-8 bytes. InnoDB keys take at most 3072 bytes, shared by
/// collection and key.
pub const MAX_KEY_LEN: usize = 1536;

/// The longest collection name, in UTF-8 bytes.
pub const MAX_COLLECTION_LEN: usize = 1536;

/// The deepest JSON stored in the `value` column.
pub const MAX_JSON_DEPTH: usize = 32;

/// The table comment that marks a kv table of [`FORMAT_VERSION`].
pub fn format_comment() -> String {
    format!("kv-store-mysql format {FORMAT_VERSION}")
}

/// Checks a table name: `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_TABLE_NAME`] characters.
///
/// ```
/// use kv_store_mysql::format::check_table_name;
///
/// assert!(check_table_name("kv_store").is_ok());
/// assert!(check_table_name("a`b").is_err());
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

/// True if `value` goes to the `value` (JSON text) column.
pub fn is_json(value: &[u8]) -> bool {
    if value.is_empty() || value.windows(6).any(|w| w == b"\\u0000") {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(value) {
        Ok(v) => depth(&v) <= MAX_JSON_DEPTH,
        Err(_) => false,
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The SQL of one table.
#[derive(Debug)]
pub(crate) struct Sql {
    pub t: String,
    pub create: String,
    pub comment: &'static str,
    pub get: String,
    pub ttl: String,
    pub upsert_head: String,
    pub upsert_tail: &'static str,
    pub delete_expired_one: String,
    pub insert: String,
    pub update_if_version: String,
    pub delete: String,
    pub scan_keys: String,
    pub scan_entries: String,
    pub collections: String,
    pub clear_live: String,
    pub clear_rest: String,
    pub drop: String,
    pub cull: String,
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";
const COLS: &str = "value, raw, expires_at, created_at, version";

impl Sql {
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("`{table}`");
        Sql {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 collection VARBINARY({MAX_COLLECTION_LEN}) NOT NULL, \
                 `key` VARBINARY({MAX_KEY_LEN}) NOT NULL, \
                 value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
                 raw LONGBLOB NULL, \
                 expires_at BIGINT NULL, created_at BIGINT NOT NULL, \
                 version BIGINT UNSIGNED NOT NULL, \
                 PRIMARY KEY (collection, `key`), \
                 KEY `{table}_expires_at` (expires_at)\
                 ) ENGINE=InnoDB COMMENT='{}'",
                format_comment()
            ),
            comment: "SELECT table_comment FROM information_schema.tables \
                      WHERE table_schema = DATABASE() AND table_name = ?",
            get: format!("SELECT {COLS} FROM {t} WHERE collection = ? AND `key` = ? AND {LIVE}"),
            ttl: format!(
                "SELECT expires_at, (value IS NULL) + (raw IS NULL) FROM {t} \
                 WHERE collection = ? AND `key` = ? AND {LIVE}"
            ),
            upsert_head: format!("INSERT INTO {t} (collection, `key`, {COLS}) VALUES "),
            upsert_tail: " ON DUPLICATE KEY UPDATE value = VALUES(value), raw = VALUES(raw), \
                          expires_at = VALUES(expires_at), created_at = VALUES(created_at), \
                          version = VALUES(version)",
            delete_expired_one: format!(
                "DELETE FROM {t} WHERE collection = ? AND `key` = ? AND expires_at <= ?"
            ),
            insert: format!(
                "INSERT INTO {t} (collection, `key`, {COLS}) VALUES (?, ?, ?, ?, ?, ?, UUID_SHORT())"
            ),
            update_if_version: format!(
                "UPDATE {t} SET value = ?, raw = ?, expires_at = ?, created_at = ?, \
                 version = UUID_SHORT() \
                 WHERE collection = ? AND `key` = ? AND version = ? AND {LIVE}"
            ),
            delete: format!("DELETE FROM {t} WHERE collection = ? AND `key` = ? AND {LIVE}"),
            scan_keys: format!(
                "SELECT `key` FROM {t} WHERE collection = ? AND {LIVE} \
                 AND `key` >= ? AND (? IS NULL OR `key` < ?) AND (? IS NULL OR `key` > ?) \
                 ORDER BY `key` LIMIT ?"
            ),
            scan_entries: format!(
                "SELECT `key`, {COLS} FROM {t} WHERE collection = ? AND {LIVE} \
                 AND `key` >= ? AND (? IS NULL OR `key` < ?) AND (? IS NULL OR `key` > ?) \
                 ORDER BY `key` LIMIT ?"
            ),
            collections: format!(
                "SELECT DISTINCT collection FROM {t} WHERE {LIVE} ORDER BY collection"
            ),
            clear_live: format!("DELETE FROM {t} WHERE collection = ? AND {LIVE}"),
            clear_rest: format!("DELETE FROM {t} WHERE collection = ?"),
            drop: format!("DROP TABLE IF EXISTS {t}"),
            cull: format!("DELETE FROM {t} WHERE expires_at <= ?"),
            t,
        }
    }

    /// `SELECT ... WHERE key IN (?, ?, ...)` for `n` keys.
    pub(crate) fn get_many(&self, n: usize) -> String {
        format!(
            "SELECT `key`, {COLS} FROM {} WHERE collection = ? AND `key` IN ({}) AND {LIVE}",
            self.t,
            placeholders(n)
        )
    }

    /// `DELETE ... WHERE key IN (?, ?, ...) AND live` for `n` keys.
    pub(crate) fn delete_many(&self, n: usize) -> String {
        format!(
            "DELETE FROM {} WHERE collection = ? AND `key` IN ({}) AND {LIVE}",
            self.t,
            placeholders(n)
        )
    }

    /// A multi-row upsert of `n` rows.
    pub(crate) fn put_many(&self, n: usize) -> String {
        let row = "(?, ?, ?, ?, ?, ?, UUID_SHORT())";
        let mut s = self.upsert_head.clone();
        for i in 0..n {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(row);
        }
        s.push_str(self.upsert_tail);
        s
    }
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_detection() {
        assert!(is_json(br#"{"a": [1, 2]}"#));
        assert!(!is_json(b"not json"));
        assert!(!is_json(br#""\u0000""#));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(!is_json(deep.as_bytes()));
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(is_json(ok.as_bytes()));
    }
}
