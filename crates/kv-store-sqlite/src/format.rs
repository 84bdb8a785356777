//! How entries map to SQLite: one table for every collection, metadata in columns.
//!
//! # Tables
//!
//! ```sql
//! CREATE TABLE kv_entries (
//!     collection TEXT    NOT NULL,   -- the resolved collection name, verbatim
//!     key        TEXT    NOT NULL,   -- the user key, verbatim
//!     value      BLOB    NOT NULL,   -- the raw value, no envelope
//!     expires_at INTEGER,            -- microseconds since the Unix epoch (UTC); NULL = never
//!     created_at INTEGER NOT NULL,   -- microseconds since the Unix epoch (UTC)
//!     version    INTEGER NOT NULL,   -- for compare-and-swap; unique in the database
//!     PRIMARY KEY (collection, key)
//! ) WITHOUT ROWID;
//! CREATE INDEX kv_entries_expires_at ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;
//! CREATE TABLE kv_meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
//! -- rows: ('format', 1), ('next_version', N)
//! ```
//!
//! - **One table, composite primary key.** `(collection, key)` is the primary key, so the
//!   pair is compared column by column: two different pairs can never collide, whatever
//!   characters (`::`, `/`, NUL, unicode) they hold, and no name needs escaping. SQLite has no
//!   length limit on `TEXT` below its 1 GB row limit. `WITHOUT ROWID` stores each row in the
//!   primary-key B-tree itself: a lookup is one tree descent and the key is stored once (a
//!   rowid table would need a second, unique index holding a copy of every key).
//! - **Order.** `TEXT` compares with SQLite's `BINARY` collation (`memcmp` of the UTF-8
//!   bytes), which is the key order of kv scans; a prefix scan is a range
//!   `key >= prefix AND key < upper` (never `LIKE`, whose `%`, `_` and case folding would
//!   misread keys), with `upper` from [`kv_core::scan::prefix_upper_bound`].
//! - **Expiry** is filtered in SQL (`expires_at IS NULL OR expires_at > :now`), so an expired
//!   row is never returned, counted or listed; `cull` deletes `expires_at <= :now` using the
//!   partial index.
//! - **Versions** come from `kv_meta.next_version`, raised inside the write transaction that
//!   uses them, so they are unique across every connection and process sharing the file, and
//!   never reused after a delete (no ABA for compare-and-swap).
//! - **Format version.** `kv_meta.format` is [`FORMAT_VERSION`]; a database with another
//!   number is refused with `ErrorKind::Config`.
//! - **Corrupt rows.** The columns are not `STRICT`, so another program can write a row of the
//!   wrong types (a `TEXT` value, a non-integer `expires_at`, ...). Reading such a row is an
//!   `ErrorKind::Corrupt` error naming its collection and key, never a panic.
//!
//! The data is plain SQL: `SELECT collection, key, value FROM kv_entries WHERE expires_at IS
//! NULL OR expires_at > unixepoch('subsec') * 1000000`.

/// The table that holds every entry.
pub const ENTRIES_TABLE: &str = "kv_entries";

/// The store's metadata table.
pub const META_TABLE: &str = "kv_meta";

/// The format version this crate reads and writes.
///
/// ```
/// assert_eq!(kv_store_sqlite::format::FORMAT_VERSION, 1);
/// ```
pub const FORMAT_VERSION: i64 = 1;

/// Creates the tables (if missing) and the metadata rows.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv_entries (
    collection TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_entries_expires_at ON kv_entries (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv_meta (
    name  TEXT    PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO kv_meta (name, value) VALUES ('format', 1), ('next_version', 1);
";

pub(crate) const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

pub(crate) const GET: &str = "SELECT value, expires_at, created_at, version FROM kv_entries \
     WHERE collection = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";

pub(crate) const GET_META: &str = "SELECT expires_at, version, typeof(value), typeof(created_at) FROM kv_entries \
     WHERE collection = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";

pub(crate) const UPSERT: &str = "INSERT INTO kv_entries \
     (collection, key, value, expires_at, created_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, \
     expires_at = excluded.expires_at, created_at = excluded.created_at, \
     version = excluded.version";

pub(crate) const TAKE_VERSIONS: &str =
    "UPDATE kv_meta SET value = value + ?1 WHERE name = 'next_version' RETURNING value - ?1";

pub(crate) const DELETE: &str = "DELETE FROM kv_entries WHERE collection = ?1 AND key = ?2 \
     RETURNING expires_at IS NULL OR expires_at > ?3";

pub(crate) const COUNT_LIVE: &str = "SELECT count(*) FROM kv_entries WHERE collection = ?1 \
     AND (expires_at IS NULL OR expires_at > ?2)";

pub(crate) const CLEAR: &str = "DELETE FROM kv_entries WHERE collection = ?1";

pub(crate) const DESTROY: &str = "DELETE FROM kv_entries";

pub(crate) const CULL: &str = "DELETE FROM kv_entries WHERE expires_at <= ?1";

pub(crate) const COLLECTIONS: &str = "SELECT DISTINCT collection FROM kv_entries \
     WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY collection";
