//! How entries map onto DuckDB: one table, one row per entry.
//!
//! ```sql
//! CREATE TABLE kv_entries (
//!     collection VARCHAR     NOT NULL,
//!     key        VARCHAR     NOT NULL,
//!     value      JSON,          -- the value, when it is UTF-8 JSON text (kept byte for byte)
//!     raw        BLOB,          -- the value, when it is anything else
//!     created_at TIMESTAMPTZ NOT NULL,
//!     expires_at TIMESTAMPTZ,   -- NULL: never expires
//!     version    BIGINT      NOT NULL,  -- from the sequence kv_entries_version
//!     PRIMARY KEY (collection, key)
//! );
//! COMMENT ON TABLE kv_entries IS 'kv-store-duckdb format 1';
//! ```
//!
//! - Exactly one of `value` and `raw` is set. A row with both or neither is reported as
//!   [`ErrorKind::Corrupt`] by the operations that read it (such a row can only come from
//!   someone else's SQL).
//! - `value` holds the bytes exactly as they were put when they are UTF-8 text that DuckDB's
//!   JSON parser accepts (`json_valid`; the `JSON` type validates text but does not reformat
//!   it), so `get` returns them unchanged and SQL sees a JSON value: what the typed API
//!   (`put("c", "k", &value)` with the default JSON codec) writes is always there. Everything
//!   else — postcard, MessagePack, images, plain text, JSON with a lone surrogate escape — goes
//!   to `raw`, byte for byte.
//! - Timestamps have microsecond precision, as [`kv_core::Timestamp`].
//! - Versions come from one DuckDB sequence, so they never repeat, also after deletes, crashes
//!   and [`destroy`](kv_core::KvStore::destroy_opts) (which deletes the rows and keeps the
//!   table and the sequence).
//! - The table comment names the format; a table with another comment, or without one, is
//!   refused at open (it is not a kv table).
//!
//! [`ErrorKind::Corrupt`]: kv_core::ErrorKind::Corrupt

use kv_core::{Bytes, Entry, Error, ErrorKind, Result, Timestamp, Version};

/// The default table, as py-key-value's DuckDB store.
pub const DEFAULT_TABLE: &str = "kv_entries";

/// The format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The table comment that marks a kv table of [`FORMAT_VERSION`].
pub fn format_comment() -> String {
    format!("kv-store-duckdb format {FORMAT_VERSION}")
}

/// The longest table name accepted.
pub const MAX_TABLE_NAME: usize = 63;

/// Checks a table name: `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters (so it needs no
/// quoting and its sequence name `<table>_version` is valid too).
///
/// ```
/// use kv_store_duckdb::format::check_table_name;
///
/// assert!(check_table_name("kv_entries").is_ok());
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

/// The sequence that hands out the versions of `table`.
pub fn sequence_name(table: &str) -> String {
    format!("{table}_version")
}

/// The statements that create the table and its sequence (idempotent).
pub fn schema_sql(table: &str) -> String {
    let seq = sequence_name(table);
    let comment = format_comment();
    format!(
        "CREATE SEQUENCE IF NOT EXISTS {seq};
CREATE TABLE IF NOT EXISTS {table} (
    collection VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value JSON,
    raw BLOB,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    PRIMARY KEY (collection, key)
);
COMMENT ON TABLE {table} IS '{comment}';"
    )
}

/// The columns every read selects, in this order, after the key.
pub(crate) const ENTRY_COLUMNS: &str =
    "value::VARCHAR, raw, epoch_us(created_at), epoch_us(expires_at), version";

/// One row as read.
pub(crate) struct Row {
    pub value: Option<String>,
    pub raw: Option<Vec<u8>>,
    pub created_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub version: Option<i64>,
}

impl Row {
    /// Reads [`ENTRY_COLUMNS`] starting at column `first`.
    pub(crate) fn read(row: &duckdb::Row<'_>, first: usize) -> duckdb::Result<Row> {
        Ok(Row {
            value: row.get(first)?,
            raw: row.get(first + 1)?,
            created_at: row.get(first + 2)?,
            expires_at: row.get(first + 3)?,
            version: row.get(first + 4)?,
        })
    }

    /// The entry, or a `Corrupt` error for a row kv did not write.
    pub(crate) fn into_entry(self) -> Result<Entry> {
        let value = match (self.value, self.raw) {
            (Some(text), None) => Bytes::from(text),
            (None, Some(raw)) => Bytes::from(raw),
            (Some(_), Some(_)) => return Err(corrupt("both `value` and `raw` are set")),
            (None, None) => return Err(corrupt("neither `value` nor `raw` is set")),
        };
        let version = self
            .version
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| corrupt("the version is missing or negative"))?;
        Ok(Entry::new(value)
            .with_created_at(self.created_at.map(Timestamp::from_unix_micros))
            .with_expires_at(self.expires_at.map(Timestamp::from_unix_micros))
            .with_version(Some(Version::from_u64(version))))
    }

    /// Checks the row without building the entry (for `ttl` and conditional puts).
    pub(crate) fn check(&self) -> Result<()> {
        match (&self.value, &self.raw) {
            (Some(_), None) | (None, Some(_)) => {}
            (Some(_), Some(_)) => return Err(corrupt("both `value` and `raw` are set")),
            (None, None) => return Err(corrupt("neither `value` nor `raw` is set")),
        }
        if self.version.is_none_or(|v| v < 0) {
            return Err(corrupt("the version is missing or negative"));
        }
        Ok(())
    }
}

fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("the row was not written by kv-store-duckdb: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for ok in ["kv_entries", "_x", "T1", &"a".repeat(63)] {
            check_table_name(ok).unwrap();
        }
        for bad in ["", "1a", "a b", "a-b", "a\"b", "é", &"a".repeat(64)] {
            assert_eq!(check_table_name(bad).unwrap_err().kind(), ErrorKind::Config);
        }
    }
}
