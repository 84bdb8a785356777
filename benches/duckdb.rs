//! DuckDB: kv's `DuckDbStore` against the duckdb crate running the store's own table and
//! statements on its own connection, in the same transactions.
//!
//! The baseline creates the store's schema (`kv_store_duckdb::format::schema_sql`: one table,
//! the value in a `JSON` column when it is JSON text and in a `BLOB` column otherwise, versions
//! from a sequence) and runs the store's SQL with the same prepared-statement cache: a get is
//! the store's `SELECT` with the expiry filter, decoding the row; a put is one transaction
//! around the store's `INSERT OR REPLACE` (DuckDB's `json_valid` picks the column, `nextval`
//! the version); `get_many` is one `key IN (...)` query in a transaction, the results put back
//! in the order of the keys; `put_many` one multi-row `INSERT OR REPLACE` in a transaction;
//! the scan the store's ordered `SELECT ... LIMIT` over the collection. The ratio is what kv's
//! API costs around the same SQL: owned copies of keys and values, the mutex around the
//! connection, the key sorting and de-duplication of the batches, the blocking-work wrapper,
//! error context and dispatch.
//!
//! DuckDB syncs its write-ahead log on every commit and the store has no setting to change
//! that, so both sides wait for the disk on every write (the write groups take fewer
//! samples). Each contender has its own database file holding the same 10 000 entries of
//! 1 KiB (the workload's value is text that is not JSON, so it lands in the `raw` column).

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use kv::duckdb::DuckDbStore;
use kv::duckdb::duckdb::types::ToSql;
use kv::duckdb::duckdb::{Config, Connection, params};
use kv::duckdb::format::{DEFAULT_TABLE, schema_sql, sequence_name};
use kv_benches::{COLLECTION, KvSide, Side, Workload};
use kv_core::Timestamp;

/// The columns the store reads after the key (`kv_store_duckdb::format`).
const COLUMNS: &str = "value::VARCHAR, raw, epoch_us(created_at), epoch_us(expires_at), version";

/// The store's expiry filter; `$2` is now in microseconds.
const LIVE: &str = "(expires_at IS NULL OR expires_at > make_timestamptz($2::BIGINT))";

/// A decoded row: the value and its creation time, expiry and version.
type Decoded = (Bytes, Option<i64>, Option<i64>, i64);

fn decode(row: &kv::duckdb::duckdb::Row<'_>, first: usize) -> Decoded {
    let text: Option<String> = row.get(first).expect("value");
    let raw: Option<Vec<u8>> = row.get(first + 1).expect("raw");
    let value = match (text, raw) {
        (Some(t), None) => Bytes::from(t),
        (None, Some(r)) => Bytes::from(r),
        _ => panic!("a row with both or neither of value and raw"),
    };
    (
        value,
        row.get(first + 2).expect("created_at"),
        row.get(first + 3).expect("expires_at"),
        row.get(first + 4).expect("version"),
    )
}

fn now() -> i64 {
    Timestamp::now().as_unix_micros()
}

/// The store's `INSERT OR REPLACE` of `rows` rows, 6 parameters per row.
fn upsert_sql(rows: usize) -> String {
    let seq = sequence_name(DEFAULT_TABLE);
    let mut s = format!(
        "INSERT OR REPLACE INTO {DEFAULT_TABLE} \
         (collection, key, value, raw, created_at, expires_at, version) VALUES "
    );
    for r in 0..rows {
        let b = r * 6;
        if r > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!(
            "(${c}, ${k}, CASE WHEN json_valid(${t}) THEN ${t}::JSON END, \
             CASE WHEN ${t} IS NULL THEN ${r} WHEN json_valid(${t}) THEN NULL ELSE encode(${t}) END, \
             make_timestamptz(${cr}::BIGINT), make_timestamptz(${ex}::BIGINT), nextval('{seq}'))",
            c = b + 1,
            k = b + 2,
            t = b + 3,
            r = b + 4,
            cr = b + 5,
            ex = b + 6
        ));
    }
    s
}

/// The duckdb crate on its own connection, with the store's schema and statements.
struct Duck {
    conn: Connection,
    get: String,
    get_many: String,
    upsert_one: String,
    upsert_batch: String,
    scan: String,
}

impl Duck {
    fn open(path: &Path) -> Duck {
        let conn = Connection::open_with_flags(path, Config::default()).expect("open duckdb");
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch("SET TimeZone = 'UTC'")
            .expect("time zone");
        conn.execute_batch(&format!(
            "BEGIN TRANSACTION;\n{}\nCOMMIT;",
            schema_sql(DEFAULT_TABLE)
        ))
        .expect("schema");
        let keys: Vec<String> = (0..kv_benches::BATCH)
            .map(|i| format!("${}", i + 3))
            .collect();
        Duck {
            conn,
            get: format!(
                "SELECT {COLUMNS} FROM {DEFAULT_TABLE} WHERE collection = $1 AND {LIVE} AND key = $3"
            ),
            get_many: format!(
                "SELECT key, {COLUMNS} FROM {DEFAULT_TABLE} WHERE collection = $1 AND {LIVE} \
                 AND key IN ({})",
                keys.join(", ")
            ),
            upsert_one: upsert_sql(1),
            upsert_batch: upsert_sql(kv_benches::BATCH),
            scan: format!(
                "SELECT key, {COLUMNS} FROM {DEFAULT_TABLE} WHERE collection = $1 AND {LIVE} \
                 AND key >= $3 ORDER BY key LIMIT $4"
            ),
        }
    }

    /// One transaction writing `keys` with `value` (one statement of `keys.len()` rows).
    fn write(&mut self, keys: &[&str], value: &[u8]) {
        let created = now();
        let expires: Option<i64> = None;
        // The store sends UTF-8 values as text (SQL decides whether they are JSON).
        let (text, raw) = match std::str::from_utf8(value) {
            Ok(t) => (Some(t), None),
            Err(_) => (None, Some(value)),
        };
        let sql = match keys.len() {
            1 => self.upsert_one.clone(),
            n if n == kv_benches::BATCH => self.upsert_batch.clone(),
            n => upsert_sql(n),
        };
        let txn = self.conn.transaction().expect("begin");
        {
            let mut stmt = txn.prepare_cached(&sql).expect("prepare");
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(keys.len() * 6);
            for key in keys {
                params.push(&COLLECTION);
                params.push(key);
                params.push(&text);
                params.push(&raw);
                params.push(&created);
                params.push(&expires);
            }
            stmt.execute(&params[..]).expect("upsert");
        }
        txn.commit().expect("commit");
    }
}

impl Side for Duck {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let mut stmt = self.conn.prepare_cached(&self.get).expect("prepare");
        let mut rows = stmt
            .query(params![COLLECTION, now(), w.key(i)])
            .expect("query");
        let e = rows.next().expect("row").map(|r| decode(r, 0));
        let found = e.is_some();
        std::hint::black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.write(&[w.key(i)], &w.value);
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let keys = w.batch_keys(i);
        let now = now();
        let mut found: HashMap<String, Decoded> = HashMap::with_capacity(keys.len());
        let txn = self.conn.transaction().expect("begin");
        {
            let mut stmt = txn.prepare_cached(&self.get_many).expect("prepare");
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(keys.len() + 2);
            params.push(&COLLECTION);
            params.push(&now);
            for k in &keys {
                params.push(k);
            }
            let mut rows = stmt.query(&params[..]).expect("query");
            while let Some(row) = rows.next().expect("row") {
                found.insert(row.get(0).expect("key"), decode(row, 1));
            }
        }
        txn.commit().expect("commit");
        let out: Vec<Option<&Decoded>> = keys.iter().map(|k| found.get(*k)).collect();
        std::hint::black_box(out);
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        self.write(&w.batch_keys(i), &w.value);
    }

    fn scan(&mut self, w: &Workload) -> usize {
        // One row more than the page, as the store fetches to tell whether another follows.
        let fetch = w.keys.len() as i64 + 1;
        let mut stmt = self.conn.prepare_cached(&self.scan).expect("prepare");
        let mut rows = stmt
            .query(params![COLLECTION, now(), "", fetch])
            .expect("query");
        let mut items: Vec<(String, Decoded)> = Vec::with_capacity(1024);
        while let Some(row) = rows.next().expect("row") {
            items.push((row.get(0).expect("key"), decode(row, 1)));
        }
        let n = items.len();
        std::hint::black_box(items);
        n
    }
}

fn benches(c: &mut Criterion) {
    let w = Workload::standard();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let mut raw = Duck::open(&dir.path().join("raw.duckdb"));
    for chunk in w.keys.chunks(kv_benches::BATCH) {
        let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
        raw.write(&keys, &w.value);
    }

    let store =
        DuckDbStore::open_path(dir.path().join("kv.duckdb")).expect("open the duckdb store");
    let url = format!("duckdb://{}", dir.path().join("dyn.duckdb").display());
    let dyn_store = kv::open(&url)
        .now_or_never()
        .expect("kv::open of an embedded store completes inline")
        .expect("open the duckdb store by URL");
    let mut kv_static = KvSide::new(store.clone());
    kv_static.fill(&w);
    let mut kv_dyn = KvSide::new(dyn_store);
    kv_dyn.fill(&w);
    let mut kv_tokio = KvSide::in_tokio(store);

    kv_benches::embedded_groups(
        c,
        "duckdb",
        &w,
        &mut [
            ("baseline_duckdb", &mut raw),
            ("kv_static", &mut kv_static),
            ("kv_dyn", &mut kv_dyn),
            ("kv_static_in_tokio", &mut kv_tokio),
        ],
        true,
    );
}

criterion_group! {
    name = duckdb_benches;
    config = kv_benches::config();
    targets = benches
}
criterion_main!(duckdb_benches);
