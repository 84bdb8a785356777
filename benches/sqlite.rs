//! SQLite: kv's `SqliteStore` against rusqlite running the store's own schema and statements
//! on its own connection, in the same transactions.
//!
//! The baseline does exactly the store's SQL work (`kv_store_sqlite::format`): a get is the
//! store's `SELECT` with the expiry filter, decoding the row's columns; a put is a
//! `BEGIN IMMEDIATE` transaction that takes a version from `kv_meta` and upserts the row; the
//! batches run their 100 statements in one transaction; the scan is the store's ordered
//! `SELECT ... LIMIT` over the collection in one read transaction. The ratio is therefore what
//! kv's API costs around the same SQL: the owned copies of names, the mutex around the
//! connection, the blocking-work wrapper, the error context and the dispatch.
//!
//! Both sides use WAL with `synchronous=NORMAL` (commits are not `fsync`ed; the store's default
//! `FULL` would make every write wait for the disk and hide the facade in the noise). Each
//! contender has its own database file holding the same 10 000 entries of 1 KiB.

use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::sqlite::rusqlite::{
    Connection, OpenFlags, Row, TransactionBehavior, params, types::ValueRef,
};
use kv::sqlite::{SqliteStore, Synchronous};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;

const SCHEMA: &str = "
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

const GET: &str = "SELECT value, expires_at, created_at, version FROM kv_entries \
     WHERE collection = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)";

const UPSERT: &str = "INSERT INTO kv_entries \
     (collection, key, value, expires_at, created_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, \
     expires_at = excluded.expires_at, created_at = excluded.created_at, \
     version = excluded.version";

const TAKE_VERSIONS: &str =
    "UPDATE kv_meta SET value = value + ?1 WHERE name = 'next_version' RETURNING value - ?1";

const SCAN: &str = "SELECT key, value, expires_at, created_at, version FROM kv_entries \
     WHERE collection = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?";

/// The decoded columns of an entry.
type Decoded = (Bytes, Option<i64>, i64, i64);

fn decode(row: &Row<'_>, first: usize) -> Decoded {
    let value = match row.get_ref(first).expect("value") {
        ValueRef::Blob(b) => Bytes::copy_from_slice(b),
        _ => panic!("value is not a blob"),
    };
    (
        value,
        row.get(first + 1).expect("expires_at"),
        row.get(first + 2).expect("created_at"),
        row.get(first + 3).expect("version"),
    )
}

fn now() -> i64 {
    Timestamp::now().as_unix_micros()
}

/// rusqlite on its own connection, with the store's settings and statements.
struct Raw {
    conn: Connection,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).expect("open");
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("WAL");
        assert!(mode.eq_ignore_ascii_case("wal"));
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .expect("synchronous");
        conn.execute_batch(SCHEMA).expect("schema");
        Raw { conn }
    }

    fn get_in(conn: &Connection, key: &str, now: i64) -> Option<Decoded> {
        let mut stmt = conn.prepare_cached(GET).expect("prepare");
        let mut rows = stmt.query(params![COLLECTION, key, now]).expect("query");
        rows.next().expect("row").map(|r| decode(r, 0))
    }

    fn write(&mut self, entries: &[(&str, &Bytes)]) {
        let now = now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        {
            let n = entries.len() as i64;
            let first: i64 = tx
                .prepare_cached(TAKE_VERSIONS)
                .and_then(|mut s| s.query_row(params![n], |r| r.get(0)))
                .expect("versions");
            let mut upsert = tx.prepare_cached(UPSERT).expect("prepare");
            for (version, (k, v)) in (first..).zip(entries) {
                upsert
                    .execute(params![COLLECTION, k, &v[..], None::<i64>, now, version])
                    .expect("upsert");
            }
        }
        tx.commit().expect("commit");
    }
}

impl Side for Raw {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = Self::get_in(&self.conn, w.key(i), now());
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(&[(w.key(i), &w.value)]);
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let now = now();
        let tx = self.conn.transaction().expect("begin");
        let out: Vec<_> = w
            .batch_keys(i)
            .into_iter()
            .map(|k| Self::get_in(&tx, k, now))
            .collect();
        tx.commit().expect("commit");
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        let entries: Vec<(&str, &Bytes)> =
            w.batch_keys(i).into_iter().map(|k| (k, &w.value)).collect();
        self.write(&entries);
    }

    fn scan(&mut self, w: &Workload) -> usize {
        let now = now();
        let fetch = w.keys.len() as i64 + 1;
        let tx = self.conn.transaction().expect("begin");
        let items: Vec<(String, Decoded)> = {
            let mut stmt = tx.prepare_cached(SCAN).expect("prepare");
            let mut rows = stmt.query(params![COLLECTION, now, fetch]).expect("query");
            let mut items = Vec::with_capacity(w.keys.len());
            while let Some(row) = rows.next().expect("row") {
                items.push((row.get(0).expect("key"), decode(row, 1)));
            }
            items
        };
        tx.commit().expect("commit");
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = Raw::open(&dir.path().join("raw.db"));
    for chunk in w.keys.chunks(1000) {
        let entries: Vec<(&str, &Bytes)> = chunk.iter().map(|k| (k.as_str(), &w.value)).collect();
        raw.write(&entries);
    }

    let store = SqliteStore::builder(dir.path().join("kv.db"))
        .synchronous(Synchronous::Normal)
        .open()
        .expect("open the sqlite store");
    let url = format!(
        "sqlite://{}?synchronous=normal",
        dir.path().join("dyn.db").display()
    );
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the sqlite store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "sqlite",
        &w,
        &mut [
            ("baseline_rusqlite", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        false,
    );
}

criterion_group! {
    name = sqlite_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(sqlite_benches);
