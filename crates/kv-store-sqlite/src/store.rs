//! The store: one SQLite connection per store, every write one `BEGIN IMMEDIATE` transaction.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, Row, ToSql, TransactionBehavior, params};

use crate::config::{SqliteConfig, SqliteStoreBuilder};
use crate::format::{self, FORMAT_VERSION};

use kv_engine::blocking::run_blocking;

const STORE: &str = crate::SCHEME;

/// A key-value store in one SQLite database file. Cloning is cheap and shares the connection.
///
/// Every entry is a row of the table `kv_entries` (see [`format`](crate::format)); every write
/// is one SQLite transaction, durable when it returns (WAL, `synchronous=FULL`). Several
/// stores — in this process or in others — may open the same file at once: SQLite serialises
/// their writes, and conditional puts are atomic across all of them.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_sqlite::SqliteStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open_path(dir.path().join("kv.db"))?;
/// store.put("ages", "alice", &30).await?;
/// let age: Option<u32> = store.get("ages", "alice").await?;
/// assert_eq!(age, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: SqliteConfig,
    /// `None` once closed.
    conn: Mutex<Option<Connection>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic inside an operation dropped its transaction (rolled back): the connection is
        // still good.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.config.path)
            .field("synchronous", &self.inner.config.synchronous)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &self.inner.lock().is_none())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store of a `sqlite://PATH` URL (see
    /// [`SqliteConfig::from_url`]).
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a missing directory, a path that cannot be
    /// opened, a file that is not a SQLite database (left untouched), a file system without
    /// WAL support, or a database of another kv format; [`ErrorKind::Unavailable`] (temporary)
    /// if another connection held the database locked for longer than the busy timeout.
    ///
    /// ```
    /// use kv_store_sqlite::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}?synchronous=normal", dir.path().join("kv.db").display());
    /// let store = SqliteStore::open(&url)?;
    /// assert!(kv_core::KvStore::info(&store).capability.shared);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = SqliteConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the store in the database file at `path`, with the default settings.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = kv_store_sqlite::SqliteStore::open_path(dir.path().join("kv.db"))?;
    /// assert!(store.path().ends_with("kv.db"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(SqliteConfig::new(path))
    }

    /// A private in-memory database (not durable, not shared; gone when the store closes).
    ///
    /// ```
    /// let store = kv_store_sqlite::SqliteStore::open_in_memory()?;
    /// assert!(!kv_core::KvStore::info(&store).capability.durable);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn open_in_memory() -> Result<Self> {
        Self::from_config(SqliteConfig::new(crate::config::MEMORY_PATH))
    }

    /// A builder for the store in the database file at `path`.
    ///
    /// ```
    /// use kv_store_sqlite::{SqliteStore, Synchronous};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::builder(dir.path().join("kv.db"))
    ///     .synchronous(Synchronous::Normal)
    ///     .open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(path: impl Into<PathBuf>) -> SqliteStoreBuilder {
        SqliteStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: SqliteConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let conn = open_connection(&config).map_err(open_context)?;
        let file = !config.is_memory();
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
            // WAL survives a crash of the process with either synchronous mode.
            durable: file,
            shared: file,
            max_key_len: None,
            max_collection_len: None,
            max_value_len: None,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                info,
                config,
                conn: Mutex::new(Some(conn)),
            }),
        })
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_sqlite::SqliteStore::open_path(dir.path().join("kv.db"))?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = kv_store_sqlite::SqliteStore::open_path(dir.path().join("kv.db"))?;
    /// assert_eq!(store.config().synchronous, kv_store_sqlite::Synchronous::Full);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self) -> &SqliteConfig {
        &self.inner.config
    }

    /// Runs `f` with the store's connection, for inspection, tools and tests (an
    /// [`ErrorKind::Closed`] error after [`close`](KvStore::close)). It blocks the calling
    /// thread while another operation of this store runs. Rows written here must follow the
    /// [`format`](crate::format), or the store reports them as [`ErrorKind::Corrupt`].
    ///
    /// ```
    /// # let store = kv_store_sqlite::SqliteStore::open_in_memory()?;
    /// let n: i64 = store.with_connection(|c| {
    ///     c.query_row("SELECT count(*) FROM kv_entries", [], |r| r.get(0))
    /// })?;
    /// assert_eq!(n, 0);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let guard = self.inner.lock();
        let conn = guard.as_ref().ok_or_else(|| {
            Error::new(ErrorKind::Closed, "the store was closed").with_store(STORE)
        })?;
        f(conn).map_err(|e| sql_error(e).with_store(STORE))
    }

    /// Runs `body` with the connection on tokio's blocking pool (inline outside a runtime),
    /// adding the operation's context to its error.
    fn run<T, F>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        body: F,
    ) -> impl Future<Output = Result<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let collection = collection.map(str::to_owned);
        let key = key.map(str::to_owned);
        run_blocking(STORE, op, move || {
            let mut guard = inner.lock();
            let result = match guard.as_mut() {
                Some(conn) => body(conn),
                None => Err(Error::new(ErrorKind::Closed, "the store was closed")),
            };
            drop(guard);
            result.map_err(|e| e.with_context(STORE, op, collection.as_deref(), key.as_deref()))
        })
    }

    fn resolve(&self, collection: &str) -> String {
        self.inner.info.resolve(collection).to_owned()
    }
}

// ----- open -----

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

fn open_connection(config: &SqliteConfig) -> Result<Connection> {
    let path = &config.path;
    let p = path.display();
    // No SQLITE_OPEN_URI: a path is always a path, even one starting with `file:`.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if config.is_memory() {
        Connection::open_in_memory_with_flags(flags)
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(|e| open_error(e, path))?;
    conn.busy_timeout(config.busy_timeout)
        .map_err(|e| open_error(e, path))?;
    if !config.is_memory() {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_error(e, path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(
                ErrorKind::Config,
                format!("cannot use write-ahead logging for {p} (journal_mode stays {mode})"),
            ));
        }
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}",
        config.synchronous.pragma()
    ))
    .map_err(|e| open_error(e, path))?;
    init_schema(&conn).map_err(|e| {
        if e.kind() == ErrorKind::Config || e.kind() == ErrorKind::Unavailable {
            Error::new(e.kind(), format!("cannot open {p}: {}", e.message()))
                .temporary(e.is_temporary())
        } else {
            e
        }
    })?;
    Ok(conn)
}

fn init_schema(conn: &Connection) -> Result<()> {
    // An existing store needs only a read.
    if let Some(found) = read_format(conn)? {
        return check_format(found);
    }
    // Take the write lock at once, so the schema is made by exactly one of several processes
    // opening a new file together.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_error)?;
    let r = (|| {
        conn.execute_batch(format::SCHEMA).map_err(sql_error)?;
        let found = read_format(conn)?.unwrap_or(FORMAT_VERSION);
        check_format(found)
    })();
    match r {
        Ok(()) => conn.execute_batch("COMMIT").map_err(sql_error),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The format number in `kv_meta`, or `None` if the store's tables are not there yet.
fn read_format(conn: &Connection) -> Result<Option<i64>> {
    let exists: bool = conn
        .query_row(
            "SELECT count(*) = 2 FROM sqlite_schema WHERE type = 'table' AND name IN ('kv_entries', 'kv_meta')",
            [],
            |r| r.get(0),
        )
        .map_err(sql_error)?;
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn
        .prepare("SELECT value FROM kv_meta WHERE name = 'format'")
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("the database has a table `kv_meta` that kv did not write ({e})"),
            )
        })?;
    let mut rows = stmt.query([]).map_err(sql_error)?;
    match rows.next().map_err(sql_error)? {
        Some(row) => Ok(Some(int(row, 0, "format")?)),
        None => Ok(None),
    }
}

fn check_format(found: i64) -> Result<()> {
    if found == FORMAT_VERSION {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "the database is in kv-store-sqlite format {found}; this version reads format {FORMAT_VERSION}"
        ),
    ))
}

fn open_error(e: rusqlite::Error, path: &Path) -> Error {
    let p = path.display();
    let code = e.sqlite_error_code();
    let (kind, what) = match code {
        Some(ErrorCode::NotADatabase) => (ErrorKind::Config, "it is not a SQLite database"),
        Some(ErrorCode::CannotOpen) => {
            if path
                .parent()
                .is_some_and(|d| !d.as_os_str().is_empty() && !d.exists())
            {
                (ErrorKind::Config, "its directory does not exist")
            } else if path.is_dir() {
                (ErrorKind::Config, "it is a directory")
            } else {
                (
                    ErrorKind::Config,
                    "the file cannot be opened (permission denied?)",
                )
            }
        }
        Some(ErrorCode::PermissionDenied) => (ErrorKind::Config, "permission denied"),
        Some(ErrorCode::ReadOnly) => (ErrorKind::Config, "the file is read-only"),
        Some(ErrorCode::DatabaseCorrupt) => (ErrorKind::Corrupt, "the database is damaged"),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            return Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot open {p}: another connection held the database locked longer than the busy timeout"
                ),
            )
            .temporary(true)
            .with_source(e);
        }
        _ => (ErrorKind::Backend, "SQLite error"),
    };
    Error::new(kind, format!("cannot open {p}: {what}"))
        .temporary(false)
        .with_source(e)
}

// ----- SQLite errors and rows -----

/// Maps a rusqlite error to a kv error (the rusqlite error is kept as the source).
fn sql_error(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    let (kind, msg, temporary) = match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (
                ErrorKind::Unavailable,
                "the database is locked by another connection (the busy timeout elapsed)",
                true,
            ),
            ErrorCode::TooBig => (
                ErrorKind::ValueTooLarge,
                "the row exceeds SQLite's limit of 1 000 000 000 bytes (key, collection and value together)",
                false,
            ),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                (ErrorKind::Corrupt, "the database file is damaged", false)
            }
            ErrorCode::DiskFull => (ErrorKind::Unavailable, "the disk is full", false),
            ErrorCode::ReadOnly => (ErrorKind::ReadOnly, "the database is read-only", false),
            _ => (ErrorKind::Backend, "SQLite error", false),
        },
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..) => (ErrorKind::Corrupt, "a row of an unexpected type", false),
        _ => (ErrorKind::Backend, "SQLite error", false),
    };
    Error::new(kind, msg).temporary(temporary).with_source(e)
}

fn corrupt(column: &str, found: &ValueRef<'_>) -> Error {
    let ty = match found {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    };
    Error::new(
        ErrorKind::Corrupt,
        format!("the row's `{column}` is {ty}, which kv did not write"),
    )
}

fn column<'r>(row: &'r Row<'_>, i: usize) -> Result<ValueRef<'r>> {
    row.get_ref(i).map_err(sql_error)
}

fn int(row: &Row<'_>, i: usize, name: &str) -> Result<i64> {
    match column(row, i)? {
        ValueRef::Integer(n) => Ok(n),
        other => Err(corrupt(name, &other)),
    }
}

fn opt_int(row: &Row<'_>, i: usize, name: &str) -> Result<Option<i64>> {
    match column(row, i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(n) => Ok(Some(n)),
        other => Err(corrupt(name, &other)),
    }
}

fn text(row: &Row<'_>, i: usize, name: &str) -> Result<String> {
    match column(row, i)? {
        ValueRef::Text(t) => std::str::from_utf8(t).map(str::to_owned).map_err(|_| {
            Error::new(
                ErrorKind::Corrupt,
                format!("the row's `{name}` is not valid UTF-8"),
            )
        }),
        other => Err(corrupt(name, &other)),
    }
}

fn version_of(row: &Row<'_>, i: usize) -> Result<u64> {
    let v = int(row, i, "version")?;
    u64::try_from(v).map_err(|_| {
        Error::new(
            ErrorKind::Corrupt,
            format!("the row's `version` is negative ({v})"),
        )
    })
}

/// Reads `value, expires_at, created_at, version` starting at column `first`.
fn entry_of(row: &Row<'_>, first: usize) -> Result<Entry> {
    let value = match column(row, first)? {
        ValueRef::Blob(b) => Bytes::copy_from_slice(b),
        other => return Err(corrupt("value", &other)),
    };
    let expires_at = opt_int(row, first + 1, "expires_at")?.map(Timestamp::from_unix_micros);
    let created_at = Timestamp::from_unix_micros(int(row, first + 2, "created_at")?);
    let version = version_of(row, first + 3)?;
    Ok(Entry::new(value)
        .with_expires_at(expires_at)
        .with_created_at(Some(created_at))
        .with_version(Some(Version::from_u64(version))))
}

fn micros(t: Timestamp) -> i64 {
    t.as_unix_micros()
}

fn check_mode(mode: &PutMode) -> Result<()> {
    match mode {
        PutMode::Upsert | PutMode::IfAbsent | PutMode::IfVersion(_) => Ok(()),
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("put mode {other:?} is not supported"),
        )),
    }
}

// ----- operations on a connection -----

fn get_in(conn: &Connection, collection: &str, key: &str, now: i64) -> Result<Option<Entry>> {
    let mut stmt = conn.prepare_cached(format::GET).map_err(sql_error)?;
    let mut rows = stmt
        .query(params![collection, key, now])
        .map_err(sql_error)?;
    match rows.next().map_err(sql_error)? {
        Some(row) => entry_of(row, 0).map(Some),
        None => Ok(None),
    }
}

/// The live entry's `(expires_at, version)`.
fn meta_in(
    conn: &Connection,
    collection: &str,
    key: &str,
    now: i64,
) -> Result<Option<(Option<i64>, u64)>> {
    let mut stmt = conn.prepare_cached(format::GET_META).map_err(sql_error)?;
    let mut rows = stmt
        .query(params![collection, key, now])
        .map_err(sql_error)?;
    match rows.next().map_err(sql_error)? {
        Some(row) => {
            // The whole row is checked, as a read of the entry would.
            for (i, name, expected) in [(2, "value", "blob"), (3, "created_at", "integer")] {
                let found = text(row, i, "typeof")?;
                if found != expected {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "the row's `{name}` is {}, which kv did not write",
                            found.to_uppercase()
                        ),
                    ));
                }
            }
            Ok(Some((opt_int(row, 0, "expires_at")?, version_of(row, 1)?)))
        }
        None => Ok(None),
    }
}

/// `n` new versions from `kv_meta`, inside the caller's write transaction; returns the first.
fn take_versions(conn: &Connection, n: usize) -> Result<i64> {
    let n = i64::try_from(n)
        .map_err(|_| Error::new(ErrorKind::InvalidArgument, "too many entries in one batch"))?;
    let mut stmt = conn
        .prepare_cached(format::TAKE_VERSIONS)
        .map_err(sql_error)?;
    let mut rows = stmt.query(params![n]).map_err(sql_error)?;
    match rows.next().map_err(sql_error)? {
        Some(row) => int(row, 0, "kv_meta.next_version"),
        None => Err(Error::new(
            ErrorKind::Corrupt,
            "the row `next_version` of `kv_meta` is missing",
        )),
    }
}

fn upsert_in(
    conn: &Connection,
    collection: &str,
    key: &str,
    value: &[u8],
    expires_at: Option<i64>,
    now: i64,
    version: i64,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(format::UPSERT).map_err(sql_error)?;
    stmt.execute(params![collection, key, value, expires_at, now, version])
        .map_err(sql_error)?;
    Ok(())
}

/// Runs `body` in a `BEGIN IMMEDIATE` transaction (the write lock is taken at the start, so
/// the busy timeout applies and a condition read inside holds at the commit), committing on
/// `Ok`.
fn write_txn<T>(conn: &mut Connection, body: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let r = body(&tx)?;
    tx.commit().map_err(sql_error)?;
    Ok(r)
}

fn scan_in(
    conn: &mut Connection,
    collection: &str,
    opts: &ScanOptions,
    now: i64,
) -> Result<ScanPage> {
    let after = scan::key_after(opts)?;
    let upper = scan::prefix_upper_bound(&opts.prefix);
    let limit = opts.page_size.max(1);
    let fetch = i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1);
    let mut sql = String::from(if opts.keys_only {
        "SELECT key FROM kv_entries WHERE collection = ? AND "
    } else {
        "SELECT key, value, expires_at, created_at, version FROM kv_entries WHERE collection = ? AND "
    });
    sql.push_str(format::LIVE);
    let mut args: Vec<&dyn ToSql> = vec![&collection, &now];
    match &after {
        Some(k) => {
            sql.push_str(" AND key > ?");
            args.push(k);
        }
        None if !opts.prefix.is_empty() => {
            sql.push_str(" AND key >= ?");
            args.push(&opts.prefix);
        }
        None => {}
    }
    if let Some(u) = &upper {
        sql.push_str(" AND key < ?");
        args.push(u);
    }
    sql.push_str(" ORDER BY key LIMIT ?");
    args.push(&fetch);
    // One snapshot for the page.
    let tx = conn.transaction().map_err(sql_error)?;
    let mut items = Vec::with_capacity(limit.min(1024));
    let mut more = false;
    {
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = stmt.query(&*args).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            if items.len() == limit {
                more = true;
                break;
            }
            let key = text(row, 0, "key")?;
            let entry = if opts.keys_only {
                None
            } else {
                Some(entry_of(row, 1).map_err(|e| e.with_key(&key))?)
            };
            items.push(ScanItem::new(key, entry));
        }
    }
    tx.commit().map_err(sql_error)?;
    let cursor = if more {
        items.last().map(|i: &ScanItem| scan::cursor_after(&i.key))
    } else {
        None
    };
    Ok(ScanPage::new(items, cursor))
}

// ----- running blocking work -----

impl KvStore for SqliteStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        let c = self.resolve(collection);
        let k = key.to_owned();
        self.run(
            Operation::Get,
            Some(self.inner.info.resolve(collection)),
            Some(key),
            move |conn| get_in(conn, &c, &k, micros(Timestamp::now())),
        )
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        let c = self.resolve(collection);
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.run(
            Operation::GetMany,
            Some(self.inner.info.resolve(collection)),
            None,
            move |conn| {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let now = micros(Timestamp::now());
                // One read transaction: every key is read from the same snapshot.
                let tx = conn.transaction().map_err(sql_error)?;
                let mut out = Vec::with_capacity(keys.len());
                for k in &keys {
                    out.push(get_in(&tx, &c, k, now).map_err(|e| e.with_key(k))?);
                }
                tx.commit().map_err(sql_error)?;
                Ok(out)
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
        let c = self.resolve(collection);
        let k = key.to_owned();
        let now = Timestamp::now();
        let prepared = ttl::expires_at(now, opts.ttl).and_then(|e| {
            check_mode(&opts.mode)?;
            Ok(e)
        });
        let mode = opts.mode;
        self.run(Operation::Put, Some(self.inner.info.resolve(collection)), Some(key), move |conn| {
            let expires_at = prepared?.map(micros);
            let now = micros(now);
            write_txn(conn, |tx| {
                match &mode {
                    PutMode::IfAbsent if meta_in(tx, &c, &k, now)?.is_some() => {
                        return Err(Error::new(
                            ErrorKind::ConditionFailed,
                            "an entry with this key exists",
                        ));
                    }
                    PutMode::IfVersion(expected) => {
                        let current = meta_in(tx, &c, &k, now)?.map(|(_, v)| v);
                        if current.is_none() || current != expected.as_u64() {
                            return Err(Error::new(
                                ErrorKind::ConditionFailed,
                                "the entry is missing or was changed since this version was read",
                            ));
                        }
                    }
                    _ => {}
                }
                let version = take_versions(tx, 1)?;
                upsert_in(tx, &c, &k, &value, expires_at, now, version)
            })
        })
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let c = self.resolve(collection);
        let now = Timestamp::now();
        let prepared = ttl::expires_at(now, opts.ttl);
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.run(
            Operation::PutMany,
            Some(self.inner.info.resolve(collection)),
            None,
            move |conn| {
                let expires_at = prepared?.map(micros);
                if entries.is_empty() {
                    return Ok(());
                }
                let now = micros(now);
                write_txn(conn, |tx| {
                    let first = take_versions(tx, entries.len())?;
                    for (version, (k, v)) in (first..).zip(&entries) {
                        upsert_in(tx, &c, k, v, expires_at, now, version)
                            .map_err(|e| e.with_key(k))?;
                    }
                    Ok(())
                })
            },
        )
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let c = self.resolve(collection);
        let k = key.to_owned();
        self.run(
            Operation::Delete,
            Some(self.inner.info.resolve(collection)),
            Some(key),
            move |conn| {
                let now = micros(Timestamp::now());
                write_txn(conn, |tx| {
                    delete_in(tx, &c, std::iter::once(k.as_str()), now)
                })
                .map(|n| n > 0)
            },
        )
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let c = self.resolve(collection);
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.run(
            Operation::DeleteMany,
            Some(self.inner.info.resolve(collection)),
            None,
            move |conn| {
                if keys.is_empty() {
                    return Ok(0);
                }
                let now = micros(Timestamp::now());
                write_txn(conn, |tx| {
                    delete_in(tx, &c, keys.iter().map(String::as_str), now)
                })
            },
        )
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        let c = self.resolve(collection);
        let k = key.to_owned();
        self.run(
            Operation::Ttl,
            Some(self.inner.info.resolve(collection)),
            Some(key),
            move |conn| {
                let now = Timestamp::now();
                Ok(match meta_in(conn, &c, &k, micros(now))? {
                    None => None,
                    Some((None, _)) => Some(Ttl::Never),
                    Some((Some(at), _)) => Timestamp::from_unix_micros(at)
                        .duration_since(now)
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
        let c = self.resolve(collection);
        self.run(
            Operation::Scan,
            Some(self.inner.info.resolve(collection)),
            None,
            move |conn| scan_in(conn, &c, &opts, micros(Timestamp::now())),
        )
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.run(Operation::Collections, None, None, move |conn| {
            let now = micros(Timestamp::now());
            let mut stmt = conn
                .prepare_cached(format::COLLECTIONS)
                .map_err(sql_error)?;
            let mut rows = stmt.query(params![now]).map_err(sql_error)?;
            let mut names = Vec::new();
            while let Some(row) = rows.next().map_err(sql_error)? {
                names.push(text(row, 0, "collection")?);
            }
            Ok(names)
        })
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let c = self.resolve(collection);
        self.run(
            Operation::Clear,
            Some(self.inner.info.resolve(collection)),
            None,
            move |conn| {
                let now = micros(Timestamp::now());
                write_txn(conn, |tx| {
                    let live: i64 = tx
                        .prepare_cached(format::COUNT_LIVE)
                        .and_then(|mut s| s.query_row(params![c, now], |r| r.get(0)))
                        .map_err(sql_error)?;
                    tx.prepare_cached(format::CLEAR)
                        .and_then(|mut s| s.execute(params![c]))
                        .map_err(sql_error)?;
                    Ok(u64::try_from(live).unwrap_or(0))
                })
            },
        )
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.run(Operation::Destroy, None, None, move |conn| {
            // `kv_meta` stays: the version counter must never go back.
            write_txn(conn, |tx| {
                tx.execute(format::DESTROY, []).map_err(sql_error)?;
                Ok(())
            })
        })
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::Cull, None, None, move |conn| {
            let now = micros(Timestamp::now());
            write_txn(conn, |tx| {
                let n = tx
                    .prepare_cached(format::CULL)
                    .and_then(|mut s| s.execute(params![now]))
                    .map_err(sql_error)?;
                Ok(n as u64)
            })
        })
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        // Later operations fail with `Closed`; the connection is closed once the operation
        // running now (if any) has released it.
        let inner = self.inner.clone();
        run_blocking(STORE, Operation::Close, move || {
            let taken = inner.lock().take();
            match taken {
                Some(conn) => conn.close().map_err(|(_, e)| {
                    sql_error(e)
                        .with_store(STORE)
                        .with_operation(Operation::Close)
                }),
                None => Ok(()),
            }
        })
    }
}

/// Deletes the keys; counts the live ones among them (a row of unreadable type counts as live:
/// deleting never needs to read it).
fn delete_in<'a>(
    conn: &Connection,
    collection: &str,
    keys: impl Iterator<Item = &'a str>,
    now: i64,
) -> Result<u64> {
    let mut stmt = conn.prepare_cached(format::DELETE).map_err(sql_error)?;
    let mut live = 0;
    for key in keys {
        let mut rows = stmt
            .query(params![collection, key, now])
            .map_err(|e| sql_error(e).with_key(key))?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            if !matches!(column(row, 0)?, ValueRef::Integer(0)) {
                live += 1;
            }
        }
    }
    Ok(live)
}
