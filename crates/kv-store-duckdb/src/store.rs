//! The store: one DuckDB connection, one table, every write one transaction.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use duckdb::types::ToSql;
use duckdb::{Connection, DropBehavior};
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl, scan,
    ttl,
};

use crate::config::{DuckDbConfig, DuckDbStoreBuilder, Location};
use crate::format::{self, ENTRY_COLUMNS, Row};
use crate::search;

use kv_engine::blocking::run_blocking;
use kv_engine::fs::LockError;

const STORE: &str = crate::SCHEME;

/// Rows per multi-row `INSERT` and keys per `IN (...)` list: batches larger than this are
/// split into several statements of the same transaction.
const CHUNK: usize = 256;

/// A key-value store in one DuckDB database, whose values SQL can query as JSON. Cloning is
/// cheap and shares the database.
///
/// Every entry is a row of one table (`kv_entries` by default): the value in a `JSON` column
/// when it is JSON text, in a `BLOB` column otherwise, with its creation time, expiry and
/// version; see [`format`](crate::format). Every write is one DuckDB transaction, durable
/// when it returns (DuckDB syncs its write-ahead log on commit).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_duckdb::DuckDbStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = DuckDbStore::open_path(dir.path().join("kv.duckdb"))?;
/// store.put("ages", "alice", &30).await?;
/// let age: Option<u32> = store.get("ages", "alice").await?;
/// assert_eq!(age, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DuckDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: DuckDbConfig,
    sql: Sql,
    /// `None` once closed. Every operation holds the lock while it runs: DuckDB connections
    /// are not `Sync`, and one writer at a time makes conditional puts atomic.
    state: Mutex<Option<Open>>,
}

struct Open {
    conn: Connection,
    /// The lock file, locked while the database is open (released after DuckDB closed it).
    lock: Option<kv_engine::fs::FileLock>,
}

impl fmt::Debug for DuckDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuckDbStore")
            .field("location", &self.inner.config.location)
            .field("table", &self.inner.config.table)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &self.lock_state().is_none())
            .finish()
    }
}

impl DuckDbStore {
    /// Opens (or creates) the store of a `duckdb://PATH` URL (see
    /// [`DuckDbConfig::from_url`]); `duckdb://:memory:` is a private in-memory database.
    ///
    /// Opening blocks while DuckDB reads the file (and replays its write-ahead log after a
    /// crash); from async code, call it inside `tokio::task::spawn_blocking` for large files.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a missing directory, a path that is a
    /// directory or not writable, a file that is not a DuckDB database, or a table of that name
    /// that kv did not create; [`ErrorKind::Unavailable`] (not temporary) if another process —
    /// or another open store of this process — has the file open ("locked by another
    /// process"); [`ErrorKind::Corrupt`] for a damaged file.
    ///
    /// ```
    /// use kv_store_duckdb::DuckDbStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("duckdb://{}", dir.path().join("kv.duckdb").display());
    /// let store = DuckDbStore::open(&url)?;
    /// assert!(kv_core::KvStore::info(&store).capability.durable);
    /// let memory = DuckDbStore::open("duckdb://:memory:")?;
    /// assert!(!kv_core::KvStore::info(&memory).capability.durable);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = DuckDbConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the store in the database file at `path`, with the default settings.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = kv_store_duckdb::DuckDbStore::open_path(dir.path().join("kv.duckdb"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(DuckDbConfig::new(path))
    }

    /// Opens a private in-memory database (not durable).
    ///
    /// ```
    /// let store = kv_store_duckdb::DuckDbStore::open_memory()?;
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn open_memory() -> Result<Self> {
        Self::from_config(DuckDbConfig::memory())
    }

    /// A builder for the store in the database file at `path` (`":memory:"` means memory).
    pub fn builder(path: impl Into<PathBuf>) -> DuckDbStoreBuilder {
        DuckDbStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: DuckDbConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let open = open_database(&config).map_err(open_context)?;
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: std::time::Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            durable: matches!(config.location, Location::File(_)),
            shared: false,
            max_key_len: None,
            max_collection_len: None,
            max_value_len: None,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location_url(), capability)
            .with_default_collection(config.default_collection.clone());
        let sql = Sql::new(&config.table);
        Ok(DuckDbStore {
            inner: Arc::new(Inner {
                info,
                config,
                sql,
                state: Mutex::new(Some(open)),
            }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// let store = kv_store_duckdb::DuckDbStore::open_memory()?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        match &self.inner.config.location {
            Location::File(p) => Some(p),
            Location::Memory => None,
        }
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &DuckDbConfig {
        &self.inner.config
    }

    /// The table that holds the entries.
    pub fn table(&self) -> &str {
        &self.inner.config.table
    }

    /// Runs `f` with the store's DuckDB connection: SQL over the stored values, exports,
    /// analytics (an [`ErrorKind::Closed`] error after [`close`](KvStore::close)).
    ///
    /// The store's operations wait while `f` runs. Reading is always safe. Rows written here
    /// must follow [`format`](crate::format) (or the store reports them as
    /// [`ErrorKind::Corrupt`]); a transaction must be finished before `f` returns; and the
    /// connection must not be cloned (`try_clone`) beyond `f`, or the database outlives
    /// [`close`](KvStore::close).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
    /// use kv_core::KvStoreExt;
    ///
    /// let store = kv_store_duckdb::DuckDbStore::open_memory()?;
    /// store.put("users", "alice", &serde_json::json!({"age": 30})).await?;
    /// let age = store.with_connection(|conn| {
    ///     conn.query_row(
    ///         "SELECT (value->>'age')::INT FROM kv_entries WHERE collection = 'users'",
    ///         [],
    ///         |row| row.get::<_, i32>(0),
    ///     )
    /// })?;
    /// assert_eq!(age.unwrap(), 30);
    /// # Ok::<(), kv_core::Error>(()) }).unwrap();
    /// ```
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> Result<R> {
        let guard = self.lock_state();
        match guard.as_ref() {
            Some(open) => Ok(f(&open.conn)),
            None => Err(Error::new(ErrorKind::Closed, "the store was closed").with_store(STORE)),
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, Option<Open>> {
        // A panic inside an operation drops its transaction, which rolls it back: the
        // connection is still good.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `body` with the open connection on tokio's blocking pool (inline outside a
    /// runtime); errors get the store, the operation, the collection and the key.
    fn run<T, B>(
        &self,
        op: Operation,
        collection: &str,
        key: Option<&str>,
        body: B,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        B: FnOnce(&Inner, &mut Connection, &str) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        let collection = store.inner.info.resolve(collection).to_owned();
        let key = key.map(str::to_owned);
        run_blocking(STORE, op, move || {
            let mut guard = store.lock_state();
            let result = match guard.as_mut() {
                Some(open) => body(&store.inner, &mut open.conn, &collection),
                None => Err(Error::new(ErrorKind::Closed, "the store was closed")),
            };
            result.map_err(|e| e.with_context(STORE, op, Some(&collection), key.as_deref()))
        })
    }
}

// ----- open -----

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

/// `PATH.lock`, beside the database.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    path.with_file_name(name)
}

fn locked(path: &Path) -> Error {
    kv_engine::fs::locked(
        path,
        Some("a DuckDB database has one writer process at a time"),
    )
}

fn io_open_error(io: std::io::Error, path: &Path, what: &str) -> Error {
    use std::io::ErrorKind as Io;
    let p = path.display();
    let (kind, why) = match io.kind() {
        Io::NotFound
            if path
                .parent()
                .is_some_and(|d| !d.as_os_str().is_empty() && !d.exists()) =>
        {
            (ErrorKind::Config, "its directory does not exist")
        }
        Io::NotFound => (ErrorKind::Config, "the file cannot be created there"),
        Io::PermissionDenied => (ErrorKind::Config, "permission denied"),
        Io::IsADirectory => (ErrorKind::Config, "it is a directory"),
        Io::NotADirectory => (
            ErrorKind::Config,
            "a component of the path is not a directory",
        ),
        Io::ReadOnlyFilesystem => (ErrorKind::Config, "the file system is read-only"),
        Io::StorageFull | Io::QuotaExceeded => (ErrorKind::Unavailable, "the disk is full"),
        _ => (ErrorKind::Backend, "i/o error"),
    };
    Error::new(kind, format!("cannot open {p} ({what}): {why}"))
        .temporary(false)
        .with_source(io)
}

/// Takes the store's lock file, so that a second store — in this process too, where DuckDB's
/// own `fcntl` lock does not help — fails at once instead of opening the file twice.
fn take_lock(path: &Path) -> Result<kv_engine::fs::FileLock> {
    if path.is_dir() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("cannot open {}: it is a directory", path.display()),
        ));
    }
    kv_engine::fs::lock_file(lock_path(path)).map_err(|e| match e {
        LockError::Locked => locked(path),
        LockError::Open(e) => io_open_error(e, path, "its lock file"),
        LockError::Lock(e) => io_open_error(e, path, "locking"),
    })
}

fn open_database(config: &DuckDbConfig) -> Result<Open> {
    let mut flags = duckdb::Config::default();
    if let Some(threads) = config.threads {
        flags = flags.threads(i64::from(threads)).map_err(db_error)?;
    }
    if let Some(limit) = &config.memory_limit {
        flags = flags.max_memory(limit).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("memory_limit {limit:?} is not valid: {e}"),
            )
        })?;
    }
    let (conn, lock) = match &config.location {
        Location::Memory => (
            Connection::open_in_memory_with_flags(flags).map_err(db_error)?,
            None,
        ),
        Location::File(path) => {
            let lock = take_lock(path)?;
            // DuckDB reads `name:rest` as an extension prefix (`md:`, `s3://`): a relative path
            // is made explicit.
            let for_duckdb = if path.is_relative() {
                Path::new(".").join(path)
            } else {
                path.clone()
            };
            let conn =
                Connection::open_with_flags(&for_duckdb, flags).map_err(|e| open_error(e, path))?;
            (conn, Some(lock))
        }
    };
    conn.set_prepared_statement_cache_capacity(64);
    init_schema(&conn, &config.table).map_err(|e| match &config.location {
        Location::File(p) => Error::new(
            e.kind(),
            format!("cannot open {}: {}", p.display(), e.message()),
        ),
        Location::Memory => e,
    })?;
    Ok(Open { conn, lock })
}

fn open_error(e: duckdb::Error, path: &Path) -> Error {
    let p = path.display();
    let msg = match &e {
        duckdb::Error::DuckDBFailure(_, Some(m)) => m.clone(),
        other => other.to_string(),
    };
    let (kind, what) = if msg.contains("Could not set lock on file") {
        return locked(path).with_source(e);
    } else if msg.contains("not a valid DuckDB database file") {
        (ErrorKind::Config, "it is not a DuckDB database")
    } else if msg.contains("No such file or directory") {
        if path
            .parent()
            .is_some_and(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            (ErrorKind::Config, "its directory does not exist")
        } else {
            (ErrorKind::Config, "the file cannot be created there")
        }
    } else if msg.contains("Is a directory") {
        (ErrorKind::Config, "it is a directory")
    } else if msg.contains("Permission denied") {
        (ErrorKind::Config, "permission denied")
    } else if msg.contains("version number") || msg.contains("storage version") {
        (
            ErrorKind::Config,
            "it was written by a DuckDB version this one cannot read",
        )
    } else if msg.contains("hecksum") || msg.to_ascii_lowercase().contains("corrupt") {
        (ErrorKind::Corrupt, "the file is damaged")
    } else {
        (ErrorKind::Backend, "DuckDB failed")
    };
    Error::new(kind, format!("cannot open {p}: {what}: {msg}"))
        .temporary(false)
        .with_source(e)
}

/// Creates the table and its sequence, or checks that an existing table is a kv table.
fn init_schema(conn: &Connection, table: &str) -> Result<()> {
    // Timestamps are written and read as microseconds since the epoch; UTC keeps what SQL
    // users see of TIMESTAMPTZ columns independent of the machine's zone.
    let _ = conn.execute_batch("SET TimeZone = 'UTC'");
    let existing: Option<Option<String>> = {
        let mut stmt = conn
            .prepare(
                "SELECT comment FROM duckdb_tables() \
                 WHERE schema_name = current_schema() AND lower(table_name) = lower($1)",
            )
            .map_err(db_error)?;
        let mut rows = stmt.query([table]).map_err(db_error)?;
        match rows.next().map_err(db_error)? {
            Some(row) => Some(row.get(0).map_err(db_error)?),
            None => None,
        }
    };
    match existing {
        Some(comment) if comment.as_deref() == Some(format::format_comment().as_str()) => Ok(()),
        Some(comment) => Err(Error::new(
            ErrorKind::Config,
            format!(
                "the table `{table}` exists but is not a kv-store-duckdb format {} table (its comment is {:?}); choose another table with ?table=NAME",
                format::FORMAT_VERSION,
                comment.unwrap_or_default()
            ),
        )),
        None => {
            let sql = format!("BEGIN TRANSACTION;\n{}\nCOMMIT;", format::schema_sql(table));
            conn.execute_batch(&sql).map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                db_error(e)
            })
        }
    }
}

// ----- DuckDB errors -----

/// Maps a DuckDB error to a kv error, keeping DuckDB's message and the error as the source.
fn db_error(e: duckdb::Error) -> Error {
    use duckdb::Error as D;
    let (kind, temporary) = match &e {
        D::DuckDBFailure(_, Some(msg)) => classify(msg),
        D::DuckDBFailure(_, None) => (ErrorKind::Backend, false),
        D::FromSqlConversionFailure(..)
        | D::InvalidColumnType(..)
        | D::IntegralValueOutOfRange(..)
        | D::UnsignedIntegralValueOutOfRange(..) => (ErrorKind::Corrupt, false),
        _ => (ErrorKind::Backend, false),
    };
    let msg = match kind {
        ErrorKind::Corrupt => format!("the table does not hold kv rows: {e}"),
        _ => format!("duckdb: {e}"),
    };
    Error::new(kind, msg).temporary(temporary).with_source(e)
}

fn classify(msg: &str) -> (ErrorKind, bool) {
    if msg.contains("Could not set lock on file") {
        (ErrorKind::Unavailable, false)
    } else if msg.contains("Out of Memory")
        || msg.contains("No space left")
        || msg.contains("Conflict")
        || msg.contains("conflict")
    {
        (ErrorKind::Unavailable, true)
    } else if msg.starts_with("Conversion Error") && msg.contains("JSON") {
        (ErrorKind::Serialization, false)
    } else if msg.starts_with("Binder Error") || msg.starts_with("Catalog Error") {
        // The table was altered or dropped behind the store's back.
        (ErrorKind::Corrupt, false)
    } else {
        (ErrorKind::Backend, false)
    }
}

// ----- SQL -----

/// The statements of one table. `live` filters expired rows in SQL: `$2` is now, in
/// microseconds since the epoch.
struct Sql {
    table: String,
    get: String,
    upsert_one: String,
    collections: String,
    count_live: String,
    clear: String,
    destroy: String,
    cull: String,
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > make_timestamptz($2::BIGINT))";

impl Sql {
    fn new(table: &str) -> Sql {
        Sql {
            table: table.to_owned(),
            get: format!(
                "SELECT {ENTRY_COLUMNS} FROM {table} WHERE collection = $1 AND {LIVE} AND key = $3"
            ),
            upsert_one: Self::upsert_sql(table, 1),
            collections: format!(
                "SELECT DISTINCT collection FROM {table} \
                 WHERE (expires_at IS NULL OR expires_at > make_timestamptz($1::BIGINT)) ORDER BY collection"
            ),
            count_live: format!("SELECT count(*) FROM {table} WHERE collection = $1 AND {LIVE}"),
            clear: format!("DELETE FROM {table} WHERE collection = $1"),
            destroy: format!("DELETE FROM {table}"),
            cull: format!("DELETE FROM {table} WHERE expires_at <= make_timestamptz($1::BIGINT)"),
        }
    }

    /// `INSERT OR REPLACE` of `rows` rows; each row binds 6 parameters: collection, key, the
    /// value as text (if it is UTF-8), the value as bytes (if not), created_at and expires_at
    /// (microseconds). DuckDB's own JSON parser decides between the `value` and `raw` columns,
    /// so a value SQL cannot read as JSON never reaches the JSON column.
    fn upsert_sql(table: &str, rows: usize) -> String {
        let seq = format::sequence_name(table);
        let mut s = format!(
            "INSERT OR REPLACE INTO {table} (collection, key, value, raw, created_at, expires_at, version) VALUES "
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

    /// `$first, $first+1, ...` for `n` keys.
    fn key_list(n: usize, first: usize) -> String {
        let mut s = String::with_capacity(n * 5);
        for i in 0..n {
            if i > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(i + first).to_string());
        }
        s
    }

    fn get_many(&self, n: usize) -> String {
        format!(
            "SELECT key, {ENTRY_COLUMNS} FROM {} WHERE collection = $1 AND {LIVE} AND key IN ({})",
            self.table,
            Self::key_list(n, 3)
        )
    }

    /// Counts the live rows of `n` keys (`$3...`).
    fn count_keys(&self, n: usize) -> String {
        format!(
            "SELECT count(*) FROM {} WHERE collection = $1 AND {LIVE} AND key IN ({})",
            self.table,
            Self::key_list(n, 3)
        )
    }

    /// Deletes `n` keys (`$2...`). DuckDB cannot prepare `DELETE ... RETURNING`, so the live
    /// rows are counted first, in the same transaction.
    fn delete_keys(&self, n: usize) -> String {
        format!(
            "DELETE FROM {} WHERE collection = $1 AND key IN ({})",
            self.table,
            Self::key_list(n, 2)
        )
    }

    /// `$3` is the lower bound (exclusive after a cursor), `$4` the upper bound if any, the
    /// last parameter the row limit.
    fn scan(&self, exclusive: bool, upper: bool) -> String {
        let lower = if exclusive { ">" } else { ">=" };
        let (upper, limit) = if upper {
            (" AND key < $4", "$5")
        } else {
            ("", "$4")
        };
        format!(
            "SELECT key, {ENTRY_COLUMNS} FROM {} WHERE collection = $1 AND {LIVE} AND key {lower} $3{upper} ORDER BY key LIMIT {limit}",
            self.table
        )
    }
}

fn micros(t: Timestamp) -> i64 {
    t.as_unix_micros()
}

// ----- operations -----

fn get_in(inner: &Inner, conn: &Connection, collection: &str, key: &str) -> Result<Option<Row>> {
    let now = micros(Timestamp::now());
    let mut stmt = conn.prepare_cached(&inner.sql.get).map_err(db_error)?;
    let mut rows = stmt
        .query(duckdb::params![collection, now, key])
        .map_err(db_error)?;
    match rows.next().map_err(db_error)? {
        Some(row) => Ok(Some(Row::read(row, 0).map_err(db_error)?)),
        None => Ok(None),
    }
}

fn get_many_in(
    inner: &Inner,
    conn: &mut Connection,
    collection: &str,
    keys: &[String],
) -> Result<Vec<Option<Entry>>> {
    let now = micros(Timestamp::now());
    let mut unique: Vec<&str> = keys.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut found: HashMap<String, Entry> = HashMap::with_capacity(unique.len());
    // One transaction: one snapshot for the whole batch.
    let txn = conn.transaction().map_err(db_error)?;
    for chunk in unique.chunks(CHUNK) {
        let mut stmt = txn
            .prepare_cached(&inner.sql.get_many(chunk.len()))
            .map_err(db_error)?;
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() + 2);
        params.push(&collection);
        params.push(&now);
        for k in chunk {
            params.push(k);
        }
        let mut rows = stmt.query(&params[..]).map_err(db_error)?;
        while let Some(row) = rows.next().map_err(db_error)? {
            let key: String = row.get(0).map_err(db_error)?;
            let entry = Row::read(row, 1)
                .map_err(db_error)
                .and_then(Row::into_entry)
                .map_err(|e| e.with_key(&key))?;
            found.insert(key, entry);
        }
    }
    txn.commit().map_err(db_error)?;
    Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
}

/// The value as text (UTF-8: SQL decides whether it is JSON) or as bytes.
fn split_value(value: &[u8]) -> (Option<&str>, Option<&[u8]>) {
    match std::str::from_utf8(value) {
        Ok(text) => (Some(text), None),
        Err(_) => (None, Some(value)),
    }
}

struct PutArgs {
    key: String,
    value: Bytes,
    mode: PutMode,
    now: Timestamp,
    expires_at: Option<Timestamp>,
}

fn put_in(inner: &Inner, conn: &mut Connection, collection: &str, put: PutArgs) -> Result<()> {
    let mut txn = conn.transaction().map_err(db_error)?;
    txn.set_drop_behavior(DropBehavior::Rollback);
    // The condition is checked inside the transaction, and the store's lock keeps every other
    // write out until the commit: conditional puts are atomic.
    match &put.mode {
        PutMode::Upsert => {}
        PutMode::IfAbsent => {
            if let Some(row) = get_in(inner, &txn, collection, &put.key)? {
                row.check()?;
                return Err(Error::new(
                    ErrorKind::ConditionFailed,
                    "an entry with this key exists",
                ));
            }
        }
        PutMode::IfVersion(expected) => {
            let current = match get_in(inner, &txn, collection, &put.key)? {
                Some(row) => {
                    row.check()?;
                    row.version.and_then(|v| u64::try_from(v).ok())
                }
                None => None,
            };
            if current.is_none() || current != expected.as_u64() {
                return Err(Error::new(
                    ErrorKind::ConditionFailed,
                    "the entry is missing or was changed since this version was read",
                ));
            }
        }
        other => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("put mode {other:?} is not supported"),
            ));
        }
    }
    let (json, raw) = split_value(&put.value);
    {
        let mut stmt = txn
            .prepare_cached(&inner.sql.upsert_one)
            .map_err(db_error)?;
        stmt.execute(duckdb::params![
            collection,
            put.key,
            json,
            raw,
            micros(put.now),
            put.expires_at.map(micros)
        ])
        .map_err(db_error)?;
    }
    txn.commit().map_err(db_error)
}

/// The key, text and bytes of one row to write.
type RowParams<'a> = (&'a str, Option<&'a str>, Option<&'a [u8]>);

fn put_many_in(
    inner: &Inner,
    conn: &mut Connection,
    collection: &str,
    entries: Vec<(String, Bytes)>,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<()> {
    // The last value of a key given twice wins (DuckDB's multi-row INSERT OR REPLACE would
    // keep the first).
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    for (i, (k, _)) in entries.iter().enumerate() {
        last.insert(k.as_str(), i);
    }
    let rows: Vec<RowParams<'_>> = entries
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| last.get(k.as_str()) == Some(i))
        .map(|(_, (k, v))| {
            let (json, raw) = split_value(v);
            (k.as_str(), json, raw)
        })
        .collect();
    let created = micros(now);
    let expires = expires_at.map(micros);
    let mut txn = conn.transaction().map_err(db_error)?;
    txn.set_drop_behavior(DropBehavior::Rollback);
    for chunk in rows.chunks(CHUNK) {
        let sql = if chunk.len() == 1 {
            inner.sql.upsert_one.clone()
        } else {
            Sql::upsert_sql(&inner.sql.table, chunk.len())
        };
        let mut stmt = txn.prepare_cached(&sql).map_err(db_error)?;
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 6);
        for (key, json, raw) in chunk {
            params.push(&collection);
            params.push(key);
            params.push(json);
            params.push(raw);
            params.push(&created);
            params.push(&expires);
        }
        stmt.execute(&params[..]).map_err(db_error)?;
    }
    txn.commit().map_err(db_error)
}

fn delete_in(
    inner: &Inner,
    conn: &mut Connection,
    collection: &str,
    keys: &[String],
) -> Result<u64> {
    let now = micros(Timestamp::now());
    let mut unique: Vec<&str> = keys.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut live = 0u64;
    let mut txn = conn.transaction().map_err(db_error)?;
    txn.set_drop_behavior(DropBehavior::Rollback);
    for chunk in unique.chunks(CHUNK) {
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() + 2);
        params.push(&collection);
        params.push(&now);
        for k in chunk {
            params.push(k);
        }
        let count: i64 = txn
            .prepare_cached(&inner.sql.count_keys(chunk.len()))
            .and_then(|mut s| s.query_row(&params[..], |r| r.get(0)))
            .map_err(db_error)?;
        live += u64::try_from(count).unwrap_or(0);
        params.remove(1);
        txn.prepare_cached(&inner.sql.delete_keys(chunk.len()))
            .and_then(|mut s| s.execute(&params[..]))
            .map_err(db_error)?;
    }
    txn.commit().map_err(db_error)?;
    Ok(live)
}

fn scan_in(
    inner: &Inner,
    conn: &Connection,
    collection: &str,
    opts: &ScanOptions,
) -> Result<ScanPage> {
    let after = scan::key_after(opts)?;
    let upper = scan::prefix_upper_bound(&opts.prefix);
    let now = micros(Timestamp::now());
    let limit = opts.page_size.max(1);
    // One row more than the page tells whether another page follows.
    let fetch = i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1);
    let lower: &str = after.unwrap_or(opts.prefix.as_str());
    let mut sql = inner.sql.scan(after.is_some(), upper.is_some());
    let mut params: Vec<&dyn ToSql> = vec![&collection, &now, &lower];
    if let Some(u) = &upper {
        params.push(u);
    }
    params.push(&fetch);
    let pushdown = opts
        .filter()
        .map(|f| search::pushdown(f, params.len() + 1))
        .unwrap_or_default();
    if !pushdown.sql.is_empty() {
        sql = sql.replacen(
            " ORDER BY key",
            &format!("{} ORDER BY key", pushdown.sql),
            1,
        );
        params.extend(pushdown.params.iter().map(|p| p as &dyn ToSql));
    }
    let mut stmt = conn.prepare_cached(&sql).map_err(db_error)?;
    let mut rows = stmt.query(&params[..]).map_err(db_error)?;
    let mut items: Vec<ScanItem> = Vec::with_capacity(limit.min(1024));
    let mut cursor = None;
    while let Some(row) = rows.next().map_err(db_error)? {
        if items.len() == limit {
            cursor = items.last().map(|i| scan::cursor_after(&i.key));
            break;
        }
        let key: String = row.get(0).map_err(db_error)?;
        let decoded = Row::read(row, 1).map_err(db_error);
        let entry = if opts.keys_only {
            decoded
                .and_then(|r| r.check())
                .map_err(|e| e.with_key(&key))?;
            None
        } else {
            Some(
                decoded
                    .and_then(Row::into_entry)
                    .map_err(|e| e.with_key(&key))?,
            )
        };
        items.push(ScanItem::new(key, entry));
    }
    Ok(ScanPage::new(items, cursor))
}

fn collections_in(inner: &Inner, conn: &Connection) -> Result<Vec<String>> {
    let now = micros(Timestamp::now());
    let mut stmt = conn
        .prepare_cached(&inner.sql.collections)
        .map_err(db_error)?;
    let names = stmt
        .query_map([now], |row| row.get::<_, String>(0))
        .map_err(db_error)?
        .collect::<duckdb::Result<Vec<String>>>()
        .map_err(db_error)?;
    Ok(names)
}

fn clear_in(inner: &Inner, conn: &mut Connection, collection: &str) -> Result<u64> {
    let now = micros(Timestamp::now());
    let mut txn = conn.transaction().map_err(db_error)?;
    txn.set_drop_behavior(DropBehavior::Rollback);
    let live: i64 = txn
        .prepare_cached(&inner.sql.count_live)
        .and_then(|mut s| s.query_row(duckdb::params![collection, now], |r| r.get(0)))
        .map_err(db_error)?;
    txn.prepare_cached(&inner.sql.clear)
        .and_then(|mut s| s.execute([collection]))
        .map_err(db_error)?;
    txn.commit().map_err(db_error)?;
    Ok(u64::try_from(live).unwrap_or(0))
}

/// Checkpoints the database (the write-ahead log is merged into the file), closes it, then
/// releases the lock file.
fn close_open(open: Open) -> Result<()> {
    let Open { conn, lock } = open;
    let checkpoint = conn.execute_batch("CHECKPOINT").map_err(db_error);
    let closed = conn.close().map_err(|(conn, e)| {
        drop(conn);
        db_error(e)
    });
    drop(lock);
    checkpoint.and(closed)
}

// ----- running -----

/// An error known before any work: returned as a ready future of the same type as `run`'s.
async fn fail<T>(e: Error) -> Result<T> {
    Err(e)
}

impl KvStore for DuckDbStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        let key_owned = key.to_owned();
        self.run(
            Operation::Get,
            collection,
            Some(key),
            move |inner, conn, collection| {
                get_in(inner, conn, collection, &key_owned)?
                    .map(Row::into_entry)
                    .transpose()
            },
        )
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.run(
            Operation::GetMany,
            collection,
            None,
            move |inner, conn, collection| {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                get_many_in(inner, conn, collection, &keys)
            },
        )
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let op = Operation::Put;
        let now = Timestamp::now();
        let prepared = ttl::expires_at(now, opts.ttl).map(|expires_at| PutArgs {
            key: key.to_owned(),
            value,
            mode: opts.mode,
            now,
            expires_at,
        });
        let fut = match prepared {
            Ok(put) => Ok(
                self.run(op, collection, Some(key), move |inner, conn, collection| {
                    put_in(inner, conn, collection, put)
                }),
            ),
            Err(e) => Err(e.with_context(
                STORE,
                op,
                Some(self.inner.info.resolve(collection)),
                Some(key),
            )),
        };
        async move {
            match fut {
                Ok(f) => f.await,
                Err(e) => fail(e).await,
            }
        }
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let op = Operation::PutMany;
        let now = Timestamp::now();
        let prepared = ttl::expires_at(now, opts.ttl);
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let fut = match prepared {
            Ok(expires_at) => Ok(
                self.run(op, collection, None, move |inner, conn, collection| {
                    if entries.is_empty() {
                        return Ok(());
                    }
                    put_many_in(inner, conn, collection, entries, now, expires_at)
                }),
            ),
            Err(e) => {
                Err(e.with_context(STORE, op, Some(self.inner.info.resolve(collection)), None))
            }
        };
        async move {
            match fut {
                Ok(f) => f.await,
                Err(e) => fail(e).await,
            }
        }
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let keys = vec![key.to_owned()];
        let fut = self.run(
            Operation::Delete,
            collection,
            Some(key),
            move |inner, conn, collection| delete_in(inner, conn, collection, &keys),
        );
        async move { fut.await.map(|n| n > 0) }
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.run(
            Operation::DeleteMany,
            collection,
            None,
            move |inner, conn, collection| {
                if keys.is_empty() {
                    return Ok(0);
                }
                delete_in(inner, conn, collection, &keys)
            },
        )
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        let key_owned = key.to_owned();
        self.run(
            Operation::Ttl,
            collection,
            Some(key),
            move |inner, conn, collection| {
                let Some(row) = get_in(inner, conn, collection, &key_owned)? else {
                    return Ok(None);
                };
                row.check()?;
                Ok(match row.expires_at {
                    None => Some(Ttl::Never),
                    Some(at) => Timestamp::from_unix_micros(at)
                        .duration_since(Timestamp::now())
                        .filter(|left| !left.is_zero())
                        .map(Ttl::Remaining),
                })
            },
        )
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        self.run(
            Operation::Scan,
            collection,
            None,
            move |inner, conn, collection| scan_in(inner, conn, collection, &opts),
        )
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let store = self.clone();
        run_blocking(STORE, Operation::Collections, move || {
            let guard = store.lock_state();
            match guard.as_ref() {
                Some(open) => collections_in(&store.inner, &open.conn),
                None => Err(Error::new(ErrorKind::Closed, "the store was closed")),
            }
            .map_err(|e| e.with_context(STORE, Operation::Collections, None, None))
        })
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::Clear, collection, None, clear_in)
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        let store = self.clone();
        run_blocking(STORE, Operation::Destroy, move || {
            let guard = store.lock_state();
            match guard.as_ref() {
                Some(open) => open
                    .conn
                    .execute(&store.inner.sql.destroy, [])
                    .map(drop)
                    .map_err(db_error),
                None => Err(Error::new(ErrorKind::Closed, "the store was closed")),
            }
            .map_err(|e| e.with_context(STORE, Operation::Destroy, None, None))
        })
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        let store = self.clone();
        run_blocking(STORE, Operation::Cull, move || {
            let guard = store.lock_state();
            let now = micros(Timestamp::now());
            match guard.as_ref() {
                Some(open) => open
                    .conn
                    .execute(&store.inner.sql.cull, [now])
                    .map(|n| n as u64)
                    .map_err(db_error),
                None => Err(Error::new(ErrorKind::Closed, "the store was closed")),
            }
            .map_err(|e| e.with_context(STORE, Operation::Cull, None, None))
        })
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        // Later operations fail with `Closed` from this call on; the database is closed once
        // the operation running now (if any) has finished.
        let store = self.clone();
        run_blocking(STORE, Operation::Close, move || {
            let taken = store.lock_state().take();
            match taken {
                Some(open) => close_open(open)
                    .map_err(|e| e.with_store(STORE).with_operation(Operation::Close)),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::{KvStoreExt, Version};

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap()
            .block_on(f)
    }

    fn version(store: &DuckDbStore, c: &str, k: &str) -> u64 {
        block_on(store.get_entry(c, k))
            .unwrap()
            .and_then(|e| e.version)
            .and_then(|v| v.as_u64())
            .expect("a numeric version")
    }

    #[test]
    fn values_are_json_or_raw_and_round_trip() {
        let store = DuckDbStore::open_memory().unwrap();
        let values: Vec<&[u8]> = vec![
            b"{\"name\":  \"Alice\", \"age\": 30}",
            b"30",
            b" [1, 2] ",
            b"\"text\"",
            b"\"\\ud800\"",
            b"1e400",
            b"123456789012345678901234567890",
            b"-0",
            b"{\"a\":\"\\u0000\"}",
            b"not json",
            b"",
            b"\x00\xff\xfe",
            b"{\"a\":1",
        ];
        block_on(async {
            for (i, v) in values.iter().enumerate() {
                let key = format!("k{i}");
                store
                    .put_bytes("c", &key, Bytes::copy_from_slice(v))
                    .await
                    .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(v)));
                assert_eq!(
                    store.get_bytes("c", &key).await.unwrap().as_deref(),
                    Some(*v),
                    "{:?}",
                    String::from_utf8_lossy(v)
                );
            }
            let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
            store
                .put_bytes("c", "deep", Bytes::from(deep.clone()))
                .await
                .unwrap();
            assert_eq!(
                store.get_bytes("c", "deep").await.unwrap(),
                Some(Bytes::from(deep))
            );
        });
        let (json, raw): (i64, i64) = store
            .with_connection(|c| {
                c.query_row(
                    "SELECT count(value), count(raw) FROM kv_entries WHERE key LIKE 'k%'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(json + raw, values.len() as i64);
        assert!(raw >= 4, "{raw}");
    }

    #[test]
    fn sql_sees_json_values_and_expiry() {
        let store = DuckDbStore::open_memory().unwrap();
        block_on(async {
            store
                .put(
                    "users",
                    "alice",
                    &serde_json::json!({"name": "Alice", "age": 30}),
                )
                .await
                .unwrap();
            store
                .put(
                    "users",
                    "bob",
                    &serde_json::json!({"name": "Bob", "age": 25}),
                )
                .await
                .unwrap();
            store
                .put_with_ttl(
                    "users",
                    "eve",
                    &serde_json::json!({"name": "Eve", "age": 99}),
                    std::time::Duration::from_millis(1),
                )
                .await
                .unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(5));
        let names: Vec<(String, i32)> = store
            .with_connection(|c| {
                let mut s = c.prepare(
                    "SELECT value->>'name', (value->>'age')::INT FROM kv_entries \
                     WHERE collection = 'users' AND (expires_at IS NULL OR expires_at > now()) \
                     ORDER BY key",
                )?;
                let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<duckdb::Result<Vec<_>>>()
            })
            .unwrap()
            .unwrap();
        assert_eq!(names, vec![("Alice".into(), 30), ("Bob".into(), 25)]);
        assert_eq!(block_on(store.cull()).unwrap(), 1);
    }

    #[test]
    fn put_many_keeps_the_last_duplicate_and_versions_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.duckdb");
        let store = DuckDbStore::open_path(&path).unwrap();
        block_on(store.put_many("c", &[("a", 1), ("b", 2), ("a", 3)])).unwrap();
        assert_eq!(block_on(store.get::<i32>("c", "a")).unwrap(), Some(3));
        let keys: Vec<String> = (0..CHUNK * 2 + 3).map(|i| format!("k{i:04}")).collect();
        let entries: Vec<(&str, Bytes)> = keys
            .iter()
            .map(|k| (k.as_str(), Bytes::from_static(b"1")))
            .collect();
        block_on(store.put_many_opts("c", &entries, PutManyOptions::default())).unwrap();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = block_on(store.get_many_opts("c", &refs, GetOptions::default())).unwrap();
        assert!(got.iter().all(Option::is_some));
        let last = version(&store, "c", &keys[keys.len() - 1]);
        block_on(store.destroy()).unwrap();
        block_on(store.close()).unwrap();
        let store = DuckDbStore::open_path(&path).unwrap();
        block_on(store.put("c", "a", &1)).unwrap();
        assert!(version(&store, "c", "a") > last);
        assert_eq!(block_on(store.delete_many("c", &refs)).unwrap(), 0);
    }

    #[test]
    fn failed_conditions_write_nothing() {
        let store = DuckDbStore::open_memory().unwrap();
        block_on(store.put("c", "k", &1)).unwrap();
        let v = version(&store, "c", "k");
        let stale = PutOptions::default().with_mode(PutMode::IfVersion(Version::from_u64(v + 1)));
        let e = block_on(store.put_opts("c", "k", Bytes::from_static(b"2"), stale)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConditionFailed);
        assert_eq!(e.key(), Some("k"));
        let ok = PutOptions::default().with_mode(PutMode::IfVersion(Version::from_u64(v)));
        block_on(store.put_opts("c", "k", Bytes::from_static(b"2"), ok)).unwrap();
        assert_eq!(block_on(store.get::<i32>("c", "k")).unwrap(), Some(2));
        let absent = PutOptions::default().with_mode(PutMode::IfAbsent);
        let e = block_on(store.put_opts("c", "k", Bytes::from_static(b"3"), absent)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConditionFailed);
        assert_eq!(block_on(store.get::<i32>("c", "k")).unwrap(), Some(2));
    }

    #[test]
    fn a_second_open_in_this_process_is_refused_until_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.duckdb");
        let store = DuckDbStore::open_path(&path).unwrap();
        let e = DuckDbStore::open_path(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(!e.is_temporary());
        assert!(e.to_string().contains("locked by another process"), "{e}");
        let clone = store.clone();
        block_on(store.close()).unwrap();
        block_on(store.close()).unwrap();
        for e in [
            block_on(clone.get_bytes("c", "k")).unwrap_err(),
            block_on(clone.put("c", "k", &1)).unwrap_err(),
            block_on(clone.cull()).unwrap_err(),
            block_on(clone.collections()).unwrap_err(),
            clone.with_connection(|_| ()).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
        }
        assert!(format!("{clone:?}").contains("closed: true"));
        drop(DuckDbStore::open_path(&path).unwrap());
    }

    #[test]
    fn open_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let e = DuckDbStore::open_path(dir.path().join("missing/kv.duckdb")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("directory does not exist"), "{e}");
        let e = DuckDbStore::open_path(dir.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let junk = dir.path().join("junk.duckdb");
        std::fs::write(&junk, vec![b'x'; 10_000]).unwrap();
        let e = DuckDbStore::open_path(&junk).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("not a DuckDB database"), "{e}");
        assert_eq!(std::fs::read(&junk).unwrap(), vec![b'x'; 10_000]);
        // A table of the same name that kv did not create is refused, not used.
        let other = dir.path().join("other.duckdb");
        {
            let c = Connection::open(&other).unwrap();
            c.execute_batch("CREATE TABLE kv_entries (a INT)").unwrap();
        }
        let e = DuckDbStore::open_path(&other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("?table="), "{e}");
        // ... and another table name works in the same file.
        let store = DuckDbStore::builder(&other).table("kv").open().unwrap();
        block_on(store.put("c", "k", &1)).unwrap();
        assert!(store.info().location.ends_with("?table=kv"));
    }

    #[test]
    fn relative_paths_work() {
        // The working directory is the crate's: use a unique relative path under target/.
        let dir = tempfile::tempdir_in(".").unwrap();
        let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
        let url = format!("duckdb://{name}/kv.duckdb");
        let store = DuckDbStore::open(&url).unwrap();
        block_on(store.put("c", "k", &1)).unwrap();
        block_on(store.close()).unwrap();
        assert!(dir.path().join("kv.duckdb").exists());
        assert!(dir.path().join("kv.duckdb.lock").exists());
        let store = DuckDbStore::open(&url).unwrap();
        assert_eq!(block_on(store.get::<i32>("c", "k")).unwrap(), Some(1));
    }

    #[test]
    fn works_without_a_tokio_runtime() {
        fn poll_once<F: Future>(f: F) -> F::Output {
            let mut f = std::pin::pin!(f);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match f.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(v) => v,
                std::task::Poll::Pending => panic!("an operation needed a runtime"),
            }
        }
        let store = DuckDbStore::open_memory().unwrap();
        poll_once(store.put("c", "k", &1)).unwrap();
        assert_eq!(poll_once(store.get::<i32>("c", "k")).unwrap(), Some(1));
        assert_eq!(poll_once(store.clear("c")).unwrap(), 1);
        poll_once(store.close()).unwrap();
        let sync = DuckDbStore::open_memory().unwrap().sync();
        sync.put("c", "k", &2).unwrap();
        assert_eq!(sync.get::<i32>("c", "k").unwrap(), Some(2));
    }

    #[test]
    fn large_values_and_keys() {
        let store = DuckDbStore::open_memory().unwrap();
        block_on(async {
            let key = "k".repeat(100_000);
            let value = Bytes::from(vec![7u8; 3 * 1024 * 1024]);
            store.put_bytes("c", &key, value.clone()).await.unwrap();
            assert_eq!(store.get_bytes("c", &key).await.unwrap(), Some(value));
            let nul = "a\0b";
            store.put(nul, nul, &1).await.unwrap();
            assert_eq!(store.get::<i32>(nul, nul).await.unwrap(), Some(1));
            assert_eq!(store.get::<i32>(nul, "a").await.unwrap(), None);
        });
    }

    /// The conformance suite proves search results equal client-side filtering; this proves
    /// DuckDB did the filtering (a page carries only matching rows).
    #[test]
    fn search_filters_are_pushed_down() {
        use kv_core::search::{Condition, Filter};
        let store = DuckDbStore::open_memory().unwrap();
        block_on(async {
            for i in 0..200 {
                let v = serde_json::json!({"n": i, "name": format!("user{i}"), "gold": i % 2 == 0});
                store.put("c", &format!("u{i:03}"), &v).await.unwrap();
            }
            let cases = [
                (Filter::new().and(Condition::eq("n", 7)), 1),
                (Filter::new().and(Condition::ge("n", 190)), 10),
                (Filter::new().and(Condition::eq("gold", true)), 100),
                (Filter::new().and(Condition::ge("name", "user95")), 5),
                (Filter::new().key_glob("u1*0").unwrap(), 10),
            ];
            for (filter, matches) in cases {
                let opts = ScanOptions::default().with_filter(filter.clone());
                let page = store.scan_opts("c", opts).await.unwrap();
                assert_eq!(page.items.len(), matches, "rows sent for {filter}");
            }
        });
    }
}
