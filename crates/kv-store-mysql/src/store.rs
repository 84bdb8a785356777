//! The store: an sqlx pool of MySQL/MariaDB connections, one statement per operation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};
use sqlx::mysql::{MySql, MySqlDatabaseError, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::query::Query;
use sqlx::{Executor, Row};

use crate::config::MysqlConfig;
use crate::format::{self, MAX_COLLECTION_LEN, MAX_KEY_LEN, Sql, format_comment};

const STORE: &str = crate::SCHEME;

/// Keys per statement in batches (placeholders are limited to 65535 per statement).
const MAX_BATCH_KEYS: usize = 1000;

/// Bytes of values per `put_many` statement (the server's `max_allowed_packet` is 16 MiB on
/// MariaDB and 64 MiB on MySQL 8 by default).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// A key-value store in one MySQL or MariaDB table. Cloning is cheap and shares the pool.
///
/// Every entry is a row (see [`format`](crate::format)); every operation is one statement on a
/// pooled connection, under the configured timeout (put-if-absent and `clear` take two).
/// Needs a Tokio runtime.
#[derive(Clone)]
pub struct MysqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: MysqlConfig,
    pool: MySqlPool,
    sql: Sql,
    closed: AtomicBool,
    schema_ready: AtomicBool,
    schema_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlStore")
            .field("config", &self.inner.config)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

type Q<'q> = Query<'q, MySql, sqlx::mysql::MySqlArguments>;

/// Binds the two value columns.
fn bind_value<'q>(q: Q<'q>, value: &'q [u8]) -> Q<'q> {
    match std::str::from_utf8(value) {
        Ok(text) if format::is_json(value) => q.bind(Some(text)).bind(None::<&[u8]>),
        _ => q.bind(None::<&str>).bind(Some(value)),
    }
}

/// The multi-row upsert of one chunk.
fn put_statement<'q>(
    sql: &'q str,
    collection: &'q [u8],
    chunk: &'q [(&'q str, Bytes)],
    exp: Option<i64>,
    now: i64,
) -> Q<'q> {
    let mut q = sqlx::query(safe(sql));
    for (k, v) in chunk {
        q = bind_value(q.bind(collection).bind(k.as_bytes()), v)
            .bind(exp)
            .bind(now);
    }
    q
}

/// Our SQL: built from the validated table name and constants, never from user data (which
/// is always bound).
fn safe(sql: &str) -> sqlx::AssertSqlSafe<&str> {
    sqlx::AssertSqlSafe(sql)
}

fn now_micros() -> i64 {
    Timestamp::now().as_unix_micros()
}

impl MysqlStore {
    /// Connects to the server of a `mysql://` or `mariadb://` URL (see
    /// [`MysqlConfig::from_url`]) and creates the store's table if it is missing.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL or a table that is not a kv table of this
    /// format; [`ErrorKind::Unavailable`] / [`ErrorKind::Timeout`] (temporary) if the server
    /// cannot be reached in time. No error shows the password.
    pub fn connect(url: &str) -> impl Future<Output = Result<Self>> + Send + use<> {
        let config = MysqlConfig::from_url(url);
        async move { Self::connect_with(config?).await }
    }

    /// Connects with explicit settings.
    pub async fn connect_with(config: MysqlConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let pool = MySqlPoolOptions::new()
            .max_connections(config.pool_size)
            .min_connections(0)
            .acquire_timeout(config.timeout)
            // Broken connections are dropped when a query on them fails.
            .test_before_acquire(false)
            .connect_lazy_with(config.options.clone());
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            durable: true,
            shared: true,
            max_key_len: Some(MAX_KEY_LEN),
            max_collection_len: Some(MAX_COLLECTION_LEN),
            ..Capability::default()
        };
        let location = if config.location.contains("table=") {
            config.location.clone()
        } else {
            let sep = if config.location.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{sep}table={}", config.location, config.table)
        };
        let info = StoreInfo::new(STORE, location, capability)
            .with_default_collection(config.default_collection.clone());
        let sql = Sql::new(&config.table);
        let store = MysqlStore {
            inner: Arc::new(Inner {
                info,
                config,
                pool,
                sql,
                closed: AtomicBool::new(false),
                schema_ready: AtomicBool::new(false),
                schema_lock: tokio::sync::Mutex::new(()),
            }),
        };
        let inner = store.inner.clone();
        with_timeout(inner.config.timeout, async { inner.ensure_schema().await })
            .await
            .map_err(open_context)?;
        Ok(store)
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &MysqlConfig {
        &self.inner.config
    }

    /// The table of this store.
    pub fn table(&self) -> &str {
        &self.inner.config.table
    }

    /// The connection pool, for inspection, tools and tests. Rows written through it must
    /// follow the [`format`](crate::format).
    pub fn pool(&self) -> &MySqlPool {
        &self.inner.pool
    }

    async fn run<'a, T, Fut>(
        &'a self,
        op: Operation,
        collection: Option<&'a str>,
        key: Option<&'a str>,
        body: impl FnOnce(&'a Inner) -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = Result<T>> + 'a,
    {
        let inner: &'a Inner = &self.inner;
        let r = async {
            inner.check_open()?;
            with_timeout(inner.config.timeout, async {
                if !inner.schema_ready.load(Ordering::Acquire) {
                    inner.ensure_schema().await?;
                }
                body(inner).await
            })
            .await
        }
        .await;
        r.map_err(|e| e.with_context(STORE, op, collection, key))
    }
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::new(ErrorKind::Closed, "the store was closed"))
        } else {
            Ok(())
        }
    }

    fn err(&self, e: sqlx::Error) -> Error {
        let err = sql_error(e);
        if err.message().contains("(1146)") {
            self.schema_ready.store(false, Ordering::Release);
        }
        err
    }

    async fn ensure_schema(&self) -> Result<()> {
        let _guard = self.schema_lock.lock().await;
        if self.schema_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let t = &self.config.table;
        // CREATE TABLE IF NOT EXISTS is atomic on both servers; the comment tells whether an
        // existing table is ours.
        let comment: Option<String> = sqlx::query_scalar(self.sql.comment)
            .bind(t)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let comment = match comment {
            Some(c) => c,
            None => {
                self.pool
                    .execute(safe(&self.sql.create))
                    .await
                    .map_err(|e| self.err(e))?;
                sqlx::query_scalar(self.sql.comment)
                    .bind(t)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.err(e))?
            }
        };
        if comment != format_comment() {
            return Err(Error::new(
                ErrorKind::Config,
                if comment.starts_with("kv-store-mysql format ") {
                    format!(
                        "table `{t}` is in {comment}; this version reads {}",
                        format_comment()
                    )
                } else {
                    format!(
                        "table `{t}` exists but is not a kv table (its comment is not '{}')",
                        format_comment()
                    )
                },
            ));
        }
        self.schema_ready.store(true, Ordering::Release);
        Ok(())
    }
}

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

async fn with_timeout<T>(limit: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("the operation did not finish within {limit:?} (timeout_ms)"),
        )),
    }
}

/// Maps an sqlx error: lost connections, server shutdown, overload, deadlocks and lock waits
/// are temporary; undecodable rows are `Corrupt`.
pub(crate) fn sql_error(e: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match e {
        E::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|d| d.number());
            let msg = format!("mysql: {} ({})", db.message(), number.unwrap_or(0));
            match number {
                Some(1205 | 3024 | 1969) => Error::new(ErrorKind::Timeout, msg),
                Some(
                    1213 | 1040 | 1053 | 1927 | 2006 | 2013 | 1152 | 1158 | 1159 | 1160 | 1161
                    | 1184 | 1290 | 1836 | 1146,
                ) => Error::new(ErrorKind::Unavailable, msg).temporary(true),
                Some(1153 | 1301) => Error::new(ErrorKind::ValueTooLarge, msg),
                Some(1406) => Error::new(ErrorKind::InvalidKey, msg),
                _ => Error::new(ErrorKind::Backend, msg),
            }
        }
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => Error::new(
            ErrorKind::Unavailable,
            format!("cannot talk to the server: {e}"),
        )
        .temporary(true),
        E::PoolTimedOut => Error::new(
            ErrorKind::Timeout,
            "no connection from the pool in time (server down or pool exhausted)",
        ),
        E::PoolClosed => Error::new(ErrorKind::Closed, "the store was closed"),
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. } => {
            Error::new(ErrorKind::Corrupt, format!("row not in kv format: {e}"))
        }
        E::Configuration(_) => Error::new(ErrorKind::Config, format!("{e}")),
        other => Error::new(ErrorKind::Backend, format!("mysql: {other}")),
    }
}

fn corrupt(what: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Corrupt, format!("row not in kv format: {what}"))
}

fn check_name(name: &str, is_key: bool) -> Result<&[u8]> {
    let (max, what) = if is_key {
        (MAX_KEY_LEN, "key")
    } else {
        (MAX_COLLECTION_LEN, "collection name")
    };
    if name.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            format!(
                "{what} is {} bytes; the mysql store takes at most {max} bytes",
                name.len()
            ),
        ));
    }
    Ok(name.as_bytes())
}

/// Decodes `value, raw, expires_at, created_at, version` starting at column `at`.
fn entry_from_row(row: &MySqlRow, at: usize) -> Result<Entry> {
    let json: Option<String> = row.try_get(at).map_err(corrupt)?;
    let raw: Option<Vec<u8>> = row.try_get(at + 1).map_err(corrupt)?;
    let value = match (json, raw) {
        (Some(j), None) => Bytes::from(j),
        (None, Some(r)) => Bytes::from(r),
        (Some(_), Some(_)) => return Err(corrupt("both value and raw are set")),
        (None, None) => return Err(corrupt("neither value nor raw is set")),
    };
    let expires_at: Option<i64> = row.try_get(at + 2).map_err(corrupt)?;
    let created_at: i64 = row.try_get(at + 3).map_err(corrupt)?;
    let version: u64 = row.try_get(at + 4).map_err(corrupt)?;
    Ok(Entry::new(value)
        .with_expires_at(expires_at.map(Timestamp::from_unix_micros))
        .with_created_at(Some(Timestamp::from_unix_micros(created_at)))
        .with_version(Some(Version::from_u64(version))))
}

fn row_key(row: &MySqlRow) -> Result<String> {
    let k: Vec<u8> = row.try_get(0).map_err(corrupt)?;
    String::from_utf8(k).map_err(|_| corrupt("a name that is not UTF-8"))
}

fn write_times(ttl_opt: Option<Duration>) -> Result<(i64, Option<i64>)> {
    let now = Timestamp::now();
    let exp = ttl::expires_at(now, ttl_opt)?;
    Ok((now.as_unix_micros(), exp.map(Timestamp::as_unix_micros)))
}

// The bodies are `async move` blocks under the trait's `impl Future + Send` signatures.
#[allow(clippy::manual_async_fn)]
impl KvStore for MysqlStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _opts: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::Get, Some(c), Some(key), |inner| async move {
                let row = sqlx::query(safe(&inner.sql.get))
                    .bind(check_name(c, false)?)
                    .bind(check_name(key, true)?)
                    .bind(now_micros())
                    .fetch_optional(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?;
                row.map(|r| entry_from_row(&r, 0)).transpose()
            })
            .await
        }
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _opts: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::GetMany, Some(c), None, |inner| async move {
                let cb = check_name(c, false)?;
                for k in keys {
                    check_name(k, true).map_err(|e| e.with_key(k))?;
                }
                let now = now_micros();
                let mut found: HashMap<String, Entry> = HashMap::new();
                for chunk in keys.chunks(MAX_BATCH_KEYS) {
                    let sql = inner.sql.get_many(chunk.len());
                    let mut q = sqlx::query(safe(&sql)).bind(cb);
                    for k in chunk {
                        q = q.bind(k.as_bytes());
                    }
                    let rows = q
                        .bind(now)
                        .fetch_all(&inner.pool)
                        .await
                        .map_err(|e| inner.err(e))?;
                    for row in &rows {
                        let k = row_key(row)?;
                        let e = entry_from_row(row, 1).map_err(|e| e.with_key(&k))?;
                        found.insert(k, e);
                    }
                }
                Ok(keys.iter().map(|k| found.get(*k).cloned()).collect())
            })
            .await
        }
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::Put, Some(c), Some(key), |inner| async move {
                let cb = check_name(c, false)?;
                let kb = check_name(key, true)?;
                let (now, exp) = write_times(opts.ttl)?;
                match opts.mode {
                    PutMode::Upsert => {
                        let sql = inner.sql.put_many(1);
                        let q = sqlx::query(safe(&sql)).bind(cb).bind(kb);
                        bind_value(q, &value)
                            .bind(exp)
                            .bind(now)
                            .execute(&inner.pool)
                            .await
                            .map_err(|e| inner.err(e))?;
                        Ok(())
                    }
                    PutMode::IfAbsent => {
                        // An expired row counts as absent: remove it, then the insert decides
                        // atomically (a duplicate key means a live entry exists).
                        sqlx::query(safe(&inner.sql.delete_expired_one))
                            .bind(cb)
                            .bind(kb)
                            .bind(now)
                            .execute(&inner.pool)
                            .await
                            .map_err(|e| inner.err(e))?;
                        let q = sqlx::query(safe(&inner.sql.insert)).bind(cb).bind(kb);
                        match bind_value(q, &value)
                            .bind(exp)
                            .bind(now)
                            .execute(&inner.pool)
                            .await
                        {
                            Ok(_) => Ok(()),
                            Err(sqlx::Error::Database(db))
                                if db
                                    .try_downcast_ref::<MySqlDatabaseError>()
                                    .is_some_and(|d| d.number() == 1062) =>
                            {
                                Err(Error::new(
                                    ErrorKind::ConditionFailed,
                                    "the key already exists",
                                ))
                            }
                            Err(e) => Err(inner.err(e)),
                        }
                    }
                    PutMode::IfVersion(v) => {
                        let Some(v) = v.as_u64() else {
                            return Err(Error::new(
                                ErrorKind::ConditionFailed,
                                "the entry's version changed",
                            ));
                        };
                        let q = sqlx::query(safe(&inner.sql.update_if_version));
                        let r = bind_value(q, &value)
                            .bind(exp)
                            .bind(now)
                            .bind(cb)
                            .bind(kb)
                            .bind(v)
                            .bind(now)
                            .execute(&inner.pool)
                            .await
                            .map_err(|e| inner.err(e))?;
                        if r.rows_affected() == 1 {
                            Ok(())
                        } else {
                            Err(Error::new(
                                ErrorKind::ConditionFailed,
                                "the entry's version changed",
                            ))
                        }
                    }
                    _ => Err(Error::new(ErrorKind::Unsupported, "unknown put mode")),
                }
            })
            .await
        }
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::PutMany, Some(c), None, |inner| async move {
                let (now, exp) = write_times(opts.ttl)?;
                let cb = check_name(c, false)?;
                for (k, _) in entries {
                    check_name(k, true).map_err(|e| e.with_key(k))?;
                }
                // Chunks by count and size; several chunks share one transaction.
                let mut chunks: Vec<&[(&str, Bytes)]> = Vec::new();
                let mut start = 0;
                let mut bytes = 0;
                for (i, (k, v)) in entries.iter().enumerate() {
                    let size = k.len() + v.len();
                    if i > start && (i - start >= MAX_BATCH_KEYS || bytes + size > MAX_BATCH_BYTES)
                    {
                        chunks.push(&entries[start..i]);
                        start = i;
                        bytes = 0;
                    }
                    bytes += size;
                }
                if start < entries.len() {
                    chunks.push(&entries[start..]);
                }
                match chunks.as_slice() {
                    [] => Ok(()),
                    [one] => {
                        let sql = inner.sql.put_many(one.len());
                        put_statement(&sql, cb, one, exp, now)
                            .execute(&inner.pool)
                            .await
                            .map_err(|e| inner.err(e))?;
                        Ok(())
                    }
                    many => {
                        let mut tx = inner.pool.begin().await.map_err(|e| inner.err(e))?;
                        for chunk in many {
                            let sql = inner.sql.put_many(chunk.len());
                            put_statement(&sql, cb, chunk, exp, now)
                                .execute(&mut *tx)
                                .await
                                .map_err(|e| inner.err(e))?;
                        }
                        tx.commit().await.map_err(|e| inner.err(e))
                    }
                }
            })
            .await
        }
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _opts: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::Delete, Some(c), Some(key), |inner| async move {
                // Only a live row counts (an expired one is left to cull: it is invisible).
                let r = sqlx::query(safe(&inner.sql.delete))
                    .bind(check_name(c, false)?)
                    .bind(check_name(key, true)?)
                    .bind(now_micros())
                    .execute(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?;
                Ok(r.rows_affected() > 0)
            })
            .await
        }
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _opts: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::DeleteMany, Some(c), None, |inner| async move {
                let cb = check_name(c, false)?;
                for k in keys {
                    check_name(k, true).map_err(|e| e.with_key(k))?;
                }
                let now = now_micros();
                let mut n = 0;
                for chunk in keys.chunks(MAX_BATCH_KEYS) {
                    let sql = inner.sql.delete_many(chunk.len());
                    let mut q = sqlx::query(safe(&sql)).bind(cb);
                    for k in chunk {
                        q = q.bind(k.as_bytes());
                    }
                    n += q
                        .bind(now)
                        .execute(&inner.pool)
                        .await
                        .map_err(|e| inner.err(e))?
                        .rows_affected();
                }
                Ok(n)
            })
            .await
        }
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _opts: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::Ttl, Some(c), Some(key), |inner| async move {
                let now = Timestamp::now();
                let Some(row) = sqlx::query(safe(&inner.sql.ttl))
                    .bind(check_name(c, false)?)
                    .bind(check_name(key, true)?)
                    .bind(now.as_unix_micros())
                    .fetch_optional(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?
                else {
                    return Ok(None);
                };
                let exp: Option<i64> = row.try_get(0).map_err(corrupt)?;
                let nulls: i64 = row.try_get_unchecked(1).map_err(corrupt)?;
                if nulls != 1 {
                    return Err(corrupt("not exactly one of value and raw is set"));
                }
                Ok(Some(match exp {
                    None => Ttl::Never,
                    Some(e) => Ttl::Remaining(
                        Timestamp::from_unix_micros(e)
                            .duration_since(now)
                            .unwrap_or(Duration::ZERO),
                    ),
                }))
            })
            .await
        }
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::Scan, Some(c), None, |inner| async move {
                let cb = check_name(c, false)?;
                let after = scan::key_after(&opts)?.map(str::as_bytes);
                let upper = scan::prefix_upper_bound(&opts.prefix);
                let upper = upper.as_deref().map(str::as_bytes);
                let page = opts.page_size.max(1);
                let limit = i64::try_from(page)
                    .unwrap_or(i64::MAX - 1)
                    .saturating_add(1);
                let sql = if opts.keys_only {
                    &inner.sql.scan_keys
                } else {
                    &inner.sql.scan_entries
                };
                let rows = sqlx::query(safe(sql))
                    .bind(cb)
                    .bind(now_micros())
                    .bind(opts.prefix.as_bytes())
                    .bind(upper)
                    .bind(upper)
                    .bind(after)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?;
                let more = rows.len() > page;
                let mut items = Vec::with_capacity(rows.len().min(page));
                for row in rows.iter().take(page) {
                    let key = row_key(row)?;
                    let entry = if opts.keys_only {
                        None
                    } else {
                        Some(entry_from_row(row, 1).map_err(|e| e.with_key(&key))?)
                    };
                    items.push(ScanItem::new(key, entry));
                }
                let cursor = if more {
                    items.last().map(|i| scan::cursor_after(&i.key))
                } else {
                    None
                };
                Ok(ScanPage::new(items, cursor))
            })
            .await
        }
    }

    fn collections_opts(
        &self,
        _opts: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        async move {
            self.run(Operation::Collections, None, None, |inner| async move {
                let rows = sqlx::query(safe(&inner.sql.collections))
                    .bind(now_micros())
                    .fetch_all(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?;
                rows.iter().map(row_key).collect()
            })
            .await
        }
    }

    fn clear_opts(
        &self,
        collection: &str,
        _opts: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let c = self.inner.info.resolve(collection);
            self.run(Operation::Clear, Some(c), None, |inner| async move {
                let cb = check_name(c, false)?;
                let live = sqlx::query(safe(&inner.sql.clear_live))
                    .bind(cb)
                    .bind(now_micros())
                    .execute(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?
                    .rows_affected();
                sqlx::query(safe(&inner.sql.clear_rest))
                    .bind(cb)
                    .execute(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?;
                Ok(live)
            })
            .await
        }
    }

    fn destroy_opts(&self, _opts: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        async move {
            let inner: &Inner = &self.inner;
            let r = async {
                inner.check_open()?;
                with_timeout(inner.config.timeout, async {
                    let _guard = inner.schema_lock.lock().await;
                    inner
                        .pool
                        .execute(safe(&inner.sql.drop))
                        .await
                        .map_err(sql_error)?;
                    inner.schema_ready.store(false, Ordering::Release);
                    Ok(())
                })
                .await
            }
            .await;
            r.map_err(|e| e.with_context(STORE, Operation::Destroy, None, None))
        }
    }

    fn cull_opts(&self, _opts: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        async move {
            self.run(Operation::Cull, None, None, |inner| async move {
                Ok(sqlx::query(safe(&inner.sql.cull))
                    .bind(now_micros())
                    .execute(&inner.pool)
                    .await
                    .map_err(|e| inner.err(e))?
                    .rows_affected())
            })
            .await
        }
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        async move {
            self.inner.closed.store(true, Ordering::Release);
            self.inner.pool.close().await;
            Ok(())
        }
    }
}
