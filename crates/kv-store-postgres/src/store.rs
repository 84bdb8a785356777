//! The store: a deadpool of tokio-postgres connections, one SQL statement per operation;
//! operations share a few of the connections, pipelining their statements.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::config::PostgresConfig;
use crate::format::{
    self, MAX_COLLECTION_LEN, MAX_KEY_LEN, Sql, decode_name, encode_name, format_comment,
};
use crate::search;

const STORE: &str = crate::SCHEME;

/// A key-value store in one PostgreSQL table. Cloning is cheap and shares the pool.
///
/// Every entry is a row (see [`format`](crate::format)); every operation is one SQL statement
/// on a pooled connection, under the configured timeout. Several stores, in this process or
/// others, may use the same table at once: conditional puts are atomic on the server.
/// Needs a Tokio runtime (the connections run as tasks).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: PostgresConfig,
    pool: Pool,
    /// The connections operations share (none: each takes its own from `pool`).
    shared: SharedConnections,
    sql: Sql,
    closed: AtomicBool,
    /// False until the table is known to exist (again false after `destroy`).
    schema_ready: AtomicBool,
    schema_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("config", &self.inner.config)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// A value for a `json` column, sent as its text, byte for byte.
#[derive(Debug)]
struct JsonText<'a>(&'a [u8]);

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

/// The bytes of a `json` (or `jsonb`) column.
struct JsonBytes(Vec<u8>);

impl<'a> FromSql<'a> for JsonBytes {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => Ok(JsonBytes(rest.to_vec())),
                _ => Err("unsupported jsonb binary version".into()),
            }
        } else {
            Ok(JsonBytes(raw.to_vec()))
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

/// The two value columns for a value.
fn value_columns(value: &[u8]) -> (Option<JsonText<'_>>, Option<&[u8]>) {
    if format::is_json(value) {
        (Some(JsonText(value)), None)
    } else {
        (None, Some(value))
    }
}

impl PostgresStore {
    /// Connects to the server of a `postgres://` URL (see [`PostgresConfig::from_url`]) and
    /// creates the store's table if it is missing.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL or a table that is not a kv table of this
    /// format; [`ErrorKind::Unavailable`] / [`ErrorKind::Timeout`] (temporary) if the server
    /// cannot be reached in time. No error shows the password.
    pub fn connect(url: &str) -> impl Future<Output = Result<Self>> + Send + use<> {
        let config = PostgresConfig::from_url(url);
        async move { Self::connect_with(config?).await }
    }

    /// Connects with explicit settings.
    pub async fn connect_with(config: PostgresConfig) -> Result<Self> {
        let store = Self::new(config).map_err(open_context)?;
        let inner = store.inner.clone();
        with_timeout(inner.config.timeout, async move {
            let mut client = inner.client().await?;
            inner.ensure_schema(&mut client).await
        })
        .await
        .map_err(open_context)?;
        Ok(store)
    }

    fn new(config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let (tls, ssl_mode) = crate::tls::connector(&config)?;
        let mut pg = config.pg.clone();
        pg.ssl_mode(ssl_mode);
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.timeout);
        }
        // The server gives up on a statement when the client does: one left running after its
        // operation timed out would hold up every statement pipelined behind it.
        let options = pg.get_options().unwrap_or_default().to_owned();
        if !options.contains("statement_timeout") {
            let ms = config.timeout.as_millis().max(1);
            pg.options(format!("{options} -c statement_timeout={ms}").trim_start());
        }
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, format!("cannot build the pool: {e}")))?;
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
        let location = format!("{}?table={}", config.location(), config.table);
        let info = StoreInfo::new(STORE, location, capability)
            .with_default_collection(config.default_collection.clone());
        let sql = Sql::new(&config.table);
        // One pooled connection always stays unshared, for the schema's transactions.
        let shared = SharedConnections::new(
            config
                .shared_connections
                .min(config.pool_size.saturating_sub(1)),
        );
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                info,
                config,
                pool,
                shared,
                sql,
                closed: AtomicBool::new(false),
                schema_ready: AtomicBool::new(false),
                schema_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.inner.config
    }

    /// The table of this store.
    pub fn table(&self) -> &str {
        &self.inner.config.table
    }

    /// A pooled connection, for inspection, tools and tests. Rows written through it must
    /// follow the [`format`](crate::format).
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.inner.check_open()?;
        with_timeout(self.inner.config.timeout, self.inner.client()).await
    }

    /// Runs one operation: checks the store is open, applies the timeout, makes sure the
    /// table exists and adds the context to errors.
    async fn run<'a, T, F, Fut>(
        &'a self,
        op: Operation,
        collection: Option<&'a str>,
        key: Option<&'a str>,
        body: F,
    ) -> Result<T>
    where
        F: FnOnce(Arc<Inner>, Arc<deadpool_postgres::Object>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let r = async {
            self.inner.check_open()?;
            // Held until the statement's answer is in: the shared connection counts as busy.
            let lease = self.inner.shared.lease(op);
            let inner = self.inner.clone();
            with_timeout(self.inner.config.timeout, async move {
                if !inner.schema_ready.load(Ordering::Acquire) {
                    let mut client = inner.client().await?;
                    inner.ensure_schema(&mut client).await?;
                }
                let client = inner.operation_client(lease.as_ref()).await?;
                let r = body(inner, client).await;
                drop(lease);
                r
            })
            .await
        }
        .await;
        r.map_err(|e| e.with_context(STORE, op, collection, key))
    }

    fn resolve<'a>(&'a self, collection: &'a str) -> &'a str {
        self.inner.info.resolve(collection)
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

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The connection for one operation's statement: the leased shared one (opened, or
    /// replaced when it was lost, on demand); without a lease (see [`SharedConnections::lease`])
    /// one of its own.
    async fn operation_client(
        &self,
        lease: Option<&Lease<'_>>,
    ) -> Result<Arc<deadpool_postgres::Object>> {
        let Some(Lease(slot)) = lease else {
            return Ok(Arc::new(self.client().await?));
        };
        if let Some(c) = live(&slot.lock()) {
            return Ok(c);
        }
        // One operation opens the slot's connection; the others wait for it rather than
        // each taking (and keeping open) a pooled connection of its own.
        let _refill = slot.refill.lock().await;
        if let Some(c) = live(&slot.lock()) {
            return Ok(c);
        }
        let fresh = Arc::new(self.client().await?);
        *slot.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    /// Creates the table if it is missing, or checks its format marker. Serialised across
    /// processes by an advisory lock on the table name. The transaction rolls back if the
    /// future is dropped (timeout).
    async fn ensure_schema(&self, client: &mut deadpool_postgres::Object) -> Result<()> {
        let _guard = self.schema_lock.lock().await;
        if self.schema_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let encoding: String = client
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(|e| self.pg_error(e))?
            .try_get(0)
            .map_err(|e| self.pg_error(e))?;
        if encoding != "UTF8" {
            return Err(Error::new(
                ErrorKind::Config,
                format!("the database's encoding is {encoding}; kv needs a UTF8 database"),
            ));
        }
        let quoted = format!("\"{}\"", self.config.table);
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("kv-store-postgres:{}", self.config.table)],
        )
        .await
        .map_err(|e| self.pg_error(e))?;
        let row = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL, obj_description(to_regclass($1), 'pg_class')",
                &[&quoted],
            )
            .await
            .map_err(|e| self.pg_error(e))?;
        let exists: bool = row.try_get(0).map_err(|e| self.pg_error(e))?;
        let comment: Option<String> = row.try_get(1).map_err(|e| self.pg_error(e))?;
        if exists {
            match comment {
                Some(c) if c == format_comment() => {}
                Some(c) if c.starts_with("kv-store-postgres format ") => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "table {quoted} is in {c}; this version reads {}",
                            format_comment()
                        ),
                    ));
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "table {quoted} exists but is not a kv table (its comment is not '{}')",
                            format_comment()
                        ),
                    ));
                }
            }
        } else {
            tx.batch_execute(&self.sql.create)
                .await
                .map_err(|e| self.pg_error(e))?;
            tx.batch_execute(&self.sql.comment)
                .await
                .map_err(|e| self.pg_error(e))?;
        }
        tx.commit().await.map_err(|e| self.pg_error(e))?;
        self.schema_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Drops the table and its sequence.
    async fn drop_table(&self, client: &mut deadpool_postgres::Object) -> Result<()> {
        let _guard = self.schema_lock.lock().await;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("kv-store-postgres:{}", self.config.table)],
        )
        .await
        .map_err(pg_error)?;
        tx.batch_execute(&self.sql.drop).await.map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        self.schema_ready.store(false, Ordering::Release);
        Ok(())
    }

    /// Maps a tokio-postgres error; a missing table makes the next operation re-create it.
    fn pg_error(&self, e: tokio_postgres::Error) -> Error {
        if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
            self.schema_ready.store(false, Ordering::Release);
        }
        pg_error(e)
    }
}

/// A few pooled connections that concurrent operations use at once: tokio-postgres queues
/// their statements on the connection and the server answers them in order, so they
/// pipeline instead of waiting for a connection each. An operation takes the one with the
/// fewest statements in flight, the first when several are idle: a sequential caller keeps
/// to one connection (taking them in turn cost a single task 20-50 % more client CPU per put,
/// two server processes and two connection tasks waking alternately), concurrent ones spread.
struct SharedConnections {
    slots: Box<[Slot]>,
}

/// One shared connection, once opened.
#[derive(Default)]
struct Slot {
    connection: std::sync::Mutex<Option<Arc<deadpool_postgres::Object>>>,
    /// Held by the operation that (re)opens the connection.
    refill: tokio::sync::Mutex<()>,
    /// Operations holding a [`Lease`] on this slot.
    in_flight: std::sync::atomic::AtomicUsize,
}

/// An operation's claim on a shared connection; counted in the slot's `in_flight` until dropped.
struct Lease<'a>(&'a Slot);

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<deadpool_postgres::Object>>> {
        // The guarded value is a plain Option: a panic elsewhere cannot leave it half-written.
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SharedConnections {
    fn new(n: usize) -> Self {
        SharedConnections {
            slots: (0..n).map(|_| Slot::default()).collect(),
        }
    }

    /// Lets go of the shared connections (each closes once its last operation ends).
    fn clear(&self) {
        for slot in &self.slots {
            *slot.lock() = None;
        }
    }

    /// The least busy shared connection for a point operation or a batch; `None` when none
    /// are shared or for a statement that may run long (a scan, clear, cull, listing
    /// collections), which takes a connection of its own so that it never holds up the
    /// statements pipelined behind it.
    fn lease(&self, op: Operation) -> Option<Lease<'_>> {
        let short = matches!(
            op,
            Operation::Get
                | Operation::GetMany
                | Operation::Put
                | Operation::PutMany
                | Operation::Delete
                | Operation::DeleteMany
                | Operation::Ttl
        );
        if !short {
            return None;
        }
        // `min_by_key` keeps the first of equals: idle callers all take the first slot.
        let slot = self
            .slots
            .iter()
            .min_by_key(|s| s.in_flight.load(Ordering::Relaxed))?;
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Lease(slot))
    }
}

/// The slot's connection, unless it is empty or its connection was lost.
fn live(slot: &Option<Arc<deadpool_postgres::Object>>) -> Option<Arc<deadpool_postgres::Object>> {
    slot.as_ref().filter(|c| !c.is_closed()).cloned()
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

fn pool_error(e: PoolError) -> Error {
    match e {
        PoolError::Timeout(t) => Error::new(
            ErrorKind::Timeout,
            format!("no connection from the pool in time ({t:?})"),
        ),
        PoolError::Backend(e) => {
            let err = pg_error(e);
            // Failing to connect is always worth a retry.
            if err.kind() == ErrorKind::Backend {
                err.temporary(true)
            } else {
                err
            }
        }
        PoolError::Closed => Error::new(ErrorKind::Closed, "the store was closed"),
        other => Error::new(ErrorKind::Backend, format!("connection pool: {other}")),
    }
}

/// Maps a tokio-postgres error to a kv error: lost connections, shutdowns and server
/// overload are temporary `Unavailable`, everything else a permanent `Backend` error.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        // Not a server answer: I/O, a closed connection, a TLS or protocol failure.
        let msg = format!("cannot talk to the server: {e}");
        return Error::new(ErrorKind::Unavailable, msg)
            .temporary(true)
            .with_source(e);
    };
    let code = db.code().code();
    let temporary = code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("53")
        || code == "40001"
        || code == "40P01"
        || code == "55P03";
    let kind = if code == "57014" {
        ErrorKind::Timeout
    } else if temporary {
        ErrorKind::Unavailable
    } else if *db.code() == SqlState::UNDEFINED_TABLE {
        // Dropped by someone else (or by destroy on another handle): the next operation
        // creates it again.
        return Error::new(ErrorKind::Unavailable, format!("the table is gone: {db}"))
            .temporary(true);
    } else {
        ErrorKind::Backend
    };
    let msg = format!("postgres: {} ({code})", db.message());
    Error::new(kind, msg).temporary(temporary || kind == ErrorKind::Timeout)
}

fn corrupt(what: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Corrupt, format!("row not in kv format: {what}"))
}

fn check_name(name: &str, is_key: bool) -> Result<std::borrow::Cow<'_, str>> {
    let enc = encode_name(name);
    let (max, what) = if is_key {
        (MAX_KEY_LEN, "key")
    } else {
        (MAX_COLLECTION_LEN, "collection name")
    };
    if enc.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            format!(
                "{what} is {} bytes; the postgres store takes at most {max} bytes (NUL and U+0001 count twice)",
                enc.len()
            ),
        ));
    }
    Ok(enc)
}

/// Decodes the columns `value, raw, expires_at, created_at, version` starting at `at`.
fn entry_from_row(row: &Row, at: usize) -> Result<Entry> {
    let json: Option<JsonBytes> = row.try_get(at).map_err(corrupt)?;
    let raw: Option<Vec<u8>> = row.try_get(at + 1).map_err(corrupt)?;
    let value = match (json, raw) {
        (Some(j), None) => Bytes::from(j.0),
        (None, Some(r)) => Bytes::from(r),
        (Some(_), Some(_)) => return Err(corrupt("both value and raw are set")),
        (None, None) => return Err(corrupt("neither value nor raw is set")),
    };
    let expires_at: Option<SystemTime> = row.try_get(at + 2).map_err(corrupt)?;
    let created_at: Option<SystemTime> = row.try_get(at + 3).map_err(corrupt)?;
    let version: Option<i64> = row.try_get(at + 4).map_err(corrupt)?;
    let version = match version {
        Some(v) if v >= 0 => v as u64,
        _ => return Err(corrupt("bad version")),
    };
    Ok(Entry::new(value)
        .with_expires_at(expires_at.map(Timestamp::from_system_time))
        .with_created_at(created_at.map(Timestamp::from_system_time))
        .with_version(Some(Version::from_u64(version))))
}

fn stored_key(row: &Row) -> Result<String> {
    let k: String = row.try_get(0).map_err(corrupt)?;
    decode_name(&k).ok_or_else(|| corrupt("key with a bad escape"))
}

/// `now` and `expires_at` for a write.
fn write_times(ttl_opt: Option<Duration>) -> Result<(SystemTime, Option<SystemTime>)> {
    let now = Timestamp::now();
    let exp = ttl::expires_at(now, ttl_opt)?;
    Ok((now.to_system_time(), exp.map(Timestamp::to_system_time)))
}

// The bodies are `async move` blocks under the trait's `impl Future + Send` signatures.
#[allow(clippy::manual_async_fn)]
impl KvStore for PostgresStore {
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
            let c = self.resolve(collection);
            self.run(
                Operation::Get,
                Some(c),
                Some(key),
                move |inner, client| async move {
                    let ce = check_name(c, false)?;
                    let ke = check_name(key, true)?;
                    let now = SystemTime::now();
                    let stmt = client
                        .prepare_cached(&inner.sql.get)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let row = client
                        .query_opt(&stmt, &[&ce.as_ref(), &ke.as_ref(), &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    row.map(|r| entry_from_row(&r, 0)).transpose()
                },
            )
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
            let c = self.resolve(collection);
            self.run(
                Operation::GetMany,
                Some(c),
                None,
                move |inner, client| async move {
                    if keys.is_empty() {
                        return Ok(Vec::new());
                    }
                    let ce = check_name(c, false)?;
                    let mut enc = Vec::with_capacity(keys.len());
                    for k in keys {
                        enc.push(check_name(k, true).map_err(|e| e.with_key(k))?);
                    }
                    let now = SystemTime::now();
                    let stmt = client
                        .prepare_cached(&inner.sql.get_many)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let rows = client
                        .query(&stmt, &[&ce.as_ref(), &enc, &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let mut found: HashMap<String, Entry> = HashMap::with_capacity(rows.len());
                    for row in &rows {
                        let k: String = row.try_get(0).map_err(corrupt)?;
                        let entry = entry_from_row(row, 1).map_err(|e| {
                            let shown = decode_name(&k).unwrap_or_else(|| k.clone());
                            e.with_key(&shown)
                        })?;
                        found.insert(k, entry);
                    }
                    Ok(enc.iter().map(|k| found.get(k.as_ref()).cloned()).collect())
                },
            )
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
            let c = self.resolve(collection);
            self.run(
                Operation::Put,
                Some(c),
                Some(key),
                move |inner, client| async move {
                    let ce = check_name(c, false)?;
                    let ke = check_name(key, true)?;
                    let (now, exp) = write_times(opts.ttl)?;
                    let (json, raw) = value_columns(&value);
                    let c_ref = ce.as_ref();
                    let k_ref = ke.as_ref();
                    match opts.mode {
                        PutMode::Upsert => {
                            let stmt = client
                                .prepare_cached(&inner.sql.upsert)
                                .await
                                .map_err(|e| inner.pg_error(e))?;
                            client
                                .execute(&stmt, &[&c_ref, &k_ref, &json, &raw, &exp, &now])
                                .await
                                .map_err(|e| inner.pg_error(e))?;
                            Ok(())
                        }
                        PutMode::IfAbsent => {
                            let stmt = client
                                .prepare_cached(&inner.sql.insert_if_absent)
                                .await
                                .map_err(|e| inner.pg_error(e))?;
                            let row = client
                                .query_opt(&stmt, &[&c_ref, &k_ref, &json, &raw, &exp, &now, &now])
                                .await
                                .map_err(|e| inner.pg_error(e))?;
                            match row {
                                Some(_) => Ok(()),
                                None => Err(Error::new(
                                    ErrorKind::ConditionFailed,
                                    "the key already exists",
                                )),
                            }
                        }
                        PutMode::IfVersion(v) => {
                            let mismatch = || {
                                Error::new(
                                    ErrorKind::ConditionFailed,
                                    "the entry's version changed",
                                )
                            };
                            let Some(v) = v.as_u64().and_then(|v| i64::try_from(v).ok()) else {
                                return Err(mismatch());
                            };
                            let stmt = client
                                .prepare_cached(&inner.sql.update_if_version)
                                .await
                                .map_err(|e| inner.pg_error(e))?;
                            let n = client
                                .execute(
                                    &stmt,
                                    &[&c_ref, &k_ref, &json, &raw, &exp, &now, &v, &now],
                                )
                                .await
                                .map_err(|e| inner.pg_error(e))?;
                            if n == 1 { Ok(()) } else { Err(mismatch()) }
                        }
                        _ => Err(Error::new(ErrorKind::Unsupported, "unknown put mode")),
                    }
                },
            )
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
            let c = self.resolve(collection);
            self.run(
                Operation::PutMany,
                Some(c),
                None,
                move |inner, client| async move {
                    let (now, exp) = write_times(opts.ttl)?;
                    if entries.is_empty() {
                        return Ok(());
                    }
                    let ce = check_name(c, false)?;
                    // One row per key (the last value wins): ON CONFLICT cannot touch a row twice.
                    let mut last: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
                    for (i, (k, _)) in entries.iter().enumerate() {
                        last.insert(k, i);
                    }
                    let mut keys = Vec::with_capacity(last.len());
                    let mut jsons = Vec::with_capacity(last.len());
                    let mut raws = Vec::with_capacity(last.len());
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if last.get(k) != Some(&i) {
                            continue;
                        }
                        keys.push(check_name(k, true).map_err(|e| e.with_key(k))?);
                        let (j, r) = value_columns(v);
                        jsons.push(j);
                        raws.push(r);
                    }
                    let keys: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
                    let stmt = client
                        .prepare_cached(&inner.sql.put_many)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    client
                        .execute(&stmt, &[&ce.as_ref(), &keys, &jsons, &raws, &exp, &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    Ok(())
                },
            )
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
            let c = self.resolve(collection);
            self.run(
                Operation::Delete,
                Some(c),
                Some(key),
                move |inner, client| async move {
                    let ce = check_name(c, false)?;
                    let ke = check_name(key, true)?;
                    let now = SystemTime::now();
                    let stmt = client
                        .prepare_cached(&inner.sql.delete)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let row = client
                        .query_opt(&stmt, &[&ce.as_ref(), &ke.as_ref(), &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    match row {
                        None => Ok(false),
                        Some(r) => r.try_get::<_, bool>(0).map_err(corrupt),
                    }
                },
            )
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
            let c = self.resolve(collection);
            self.run(
                Operation::DeleteMany,
                Some(c),
                None,
                move |inner, client| async move {
                    if keys.is_empty() {
                        return Ok(0);
                    }
                    let ce = check_name(c, false)?;
                    let mut enc = Vec::with_capacity(keys.len());
                    for k in keys {
                        enc.push(check_name(k, true).map_err(|e| e.with_key(k))?);
                    }
                    let now = SystemTime::now();
                    let stmt = client
                        .prepare_cached(&inner.sql.delete_many)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let row = client
                        .query_one(&stmt, &[&ce.as_ref(), &enc, &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let n: i64 = row.try_get(0).map_err(corrupt)?;
                    Ok(n.max(0) as u64)
                },
            )
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
            let c = self.resolve(collection);
            self.run(
                Operation::Ttl,
                Some(c),
                Some(key),
                move |inner, client| async move {
                    let ce = check_name(c, false)?;
                    let ke = check_name(key, true)?;
                    let now = SystemTime::now();
                    let stmt = client
                        .prepare_cached(&inner.sql.ttl)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let Some(row) = client
                        .query_opt(&stmt, &[&ce.as_ref(), &ke.as_ref(), &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?
                    else {
                        return Ok(None);
                    };
                    let exp: Option<SystemTime> = row.try_get(0).map_err(corrupt)?;
                    let values: i32 = row.try_get(1).map_err(corrupt)?;
                    if values != 1 {
                        return Err(corrupt("not exactly one of value and raw is set"));
                    }
                    Ok(Some(match exp {
                        None => Ttl::Never,
                        Some(e) => Ttl::Remaining(e.duration_since(now).unwrap_or(Duration::ZERO)),
                    }))
                },
            )
            .await
        }
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        async move {
            let c = self.resolve(collection);
            self.run(
                Operation::Scan,
                Some(c),
                None,
                move |inner, client| async move {
                    let ce = check_name(c, false)?;
                    let after = scan::key_after(&opts)?.map(|k| encode_name(k).into_owned());
                    let prefix = encode_name(&opts.prefix).into_owned();
                    let upper = scan::prefix_upper_bound(&prefix);
                    let page = opts.page_size.max(1);
                    let limit = i64::try_from(page)
                        .unwrap_or(i64::MAX - 1)
                        .saturating_add(1);
                    let now = SystemTime::now();
                    let base = if opts.keys_only {
                        &inner.sql.scan_keys
                    } else {
                        &inner.sql.scan_entries
                    };
                    let pushdown = opts.filter().map(search::pushdown).unwrap_or_default();
                    let filtered;
                    let sql = if pushdown.sql.is_empty() {
                        base.as_str()
                    } else {
                        filtered = base.replacen(
                            " ORDER BY key",
                            &format!("{} ORDER BY key", pushdown.sql),
                            1,
                        );
                        filtered.as_str()
                    };
                    let stmt = client
                        .prepare_cached(sql)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let extra: Vec<Box<dyn ToSql + Sync + Send>> = pushdown
                        .params
                        .into_iter()
                        .map(|p| -> Box<dyn ToSql + Sync + Send> {
                            match p {
                                search::Param::Text(t) => Box::new(t),
                                search::Param::Path(p) => Box::new(p),
                                search::Param::Float(f) => Box::new(f),
                            }
                        })
                        .collect();
                    let ce: &str = ce.as_ref();
                    let mut params: Vec<&(dyn ToSql + Sync)> =
                        vec![&ce, &now, &prefix, &upper, &after, &limit];
                    params.extend(extra.iter().map(|b| &**b as &(dyn ToSql + Sync)));
                    let rows = client
                        .query(&stmt, &params)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let more = rows.len() > page;
                    let mut items = Vec::with_capacity(rows.len().min(page));
                    for row in rows.iter().take(page) {
                        let key = stored_key(row)?;
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
                },
            )
            .await
        }
    }

    fn collections_opts(
        &self,
        _opts: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.run(
            Operation::Collections,
            None,
            None,
            move |inner, client| async move {
                let now = SystemTime::now();
                let stmt = client
                    .prepare_cached(&inner.sql.collections)
                    .await
                    .map_err(|e| inner.pg_error(e))?;
                let rows = client
                    .query(&stmt, &[&now])
                    .await
                    .map_err(|e| inner.pg_error(e))?;
                rows.iter().map(stored_key).collect()
            },
        )
    }

    fn clear_opts(
        &self,
        collection: &str,
        _opts: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let c = self.resolve(collection);
            self.run(
                Operation::Clear,
                Some(c),
                None,
                move |inner, client| async move {
                    let ce = check_name(c, false)?;
                    let now = SystemTime::now();
                    let stmt = client
                        .prepare_cached(&inner.sql.clear)
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let row = client
                        .query_one(&stmt, &[&ce.as_ref(), &now])
                        .await
                        .map_err(|e| inner.pg_error(e))?;
                    let n: i64 = row.try_get(0).map_err(corrupt)?;
                    Ok(n.max(0) as u64)
                },
            )
            .await
        }
    }

    fn destroy_opts(&self, _opts: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        async move {
            let r = async {
                self.inner.check_open()?;
                let inner = self.inner.clone();
                with_timeout(self.inner.config.timeout, async move {
                    let mut client = inner.client().await?;
                    inner.drop_table(&mut client).await
                })
                .await
            }
            .await;
            r.map_err(|e| e.with_context(STORE, Operation::Destroy, None, None))
        }
    }

    fn cull_opts(&self, _opts: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.run(
            Operation::Cull,
            None,
            None,
            move |inner, client| async move {
                let now = SystemTime::now();
                let stmt = client
                    .prepare_cached(&inner.sql.cull)
                    .await
                    .map_err(|e| inner.pg_error(e))?;
                client
                    .execute(&stmt, &[&now])
                    .await
                    .map_err(|e| inner.pg_error(e))
            },
        )
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.shared.clear();
        self.inner.pool.close();
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(shared: &SharedConnections, lease: &Lease<'_>) -> usize {
        shared
            .slots
            .iter()
            .position(|s| std::ptr::eq(s, lease.0))
            .expect("a slot of this set")
    }

    #[test]
    fn a_lease_goes_to_the_least_busy_connection_the_first_when_idle() {
        let shared = SharedConnections::new(2);
        // A sequential caller keeps to the first connection.
        for _ in 0..3 {
            let l = shared.lease(Operation::Put).expect("shared");
            assert_eq!(index(&shared, &l), 0);
        }
        let a = shared.lease(Operation::Get).expect("shared");
        let b = shared.lease(Operation::Get).expect("shared");
        let c = shared.lease(Operation::PutMany).expect("shared");
        assert_eq!(
            (index(&shared, &a), index(&shared, &b), index(&shared, &c)),
            (0, 1, 0)
        );
        drop(b);
        let d = shared.lease(Operation::Delete).expect("shared");
        assert_eq!(index(&shared, &d), 1);
        drop((a, c, d));
        assert!(
            shared
                .slots
                .iter()
                .all(|s| s.in_flight.load(Ordering::Relaxed) == 0)
        );
    }

    #[test]
    fn long_statements_and_unshared_stores_take_no_lease() {
        let shared = SharedConnections::new(2);
        assert!(shared.lease(Operation::Scan).is_none());
        assert!(shared.lease(Operation::Clear).is_none());
        assert!(SharedConnections::new(0).lease(Operation::Get).is_none());
    }
}
