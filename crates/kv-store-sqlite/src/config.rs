//! Configuration: builder and `sqlite://` URLs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::SqliteStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "file path", "path.db").or_memory();

/// The path that opens a private in-memory database instead of a file.
pub const MEMORY_PATH: &str = ":memory:";

/// SQLite's `PRAGMA synchronous` in WAL mode: when a commit is on disk.
///
/// ```
/// use kv_store_sqlite::Synchronous;
///
/// assert_eq!("normal".parse::<Synchronous>().unwrap(), Synchronous::Normal);
/// assert_eq!(Synchronous::default(), Synchronous::Full);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL` (the default): every commit `fsync`s the write-ahead log before it
    /// returns, so a write that returned `Ok` survives a crash of the process and of the
    /// machine (power loss), as far as the disk honours the flush.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit is written to the write-ahead log (the OS page cache)
    /// without an `fsync`; the log is synced at checkpoints. A write that returned `Ok`
    /// survives a crash of the process (SIGKILL), but the last commits may be rolled back by a
    /// power loss or an OS crash. The database is never corrupted either way.
    Normal,
}

impl Synchronous {
    /// The URL form: `full` or `normal`.
    ///
    /// ```
    /// assert_eq!(kv_store_sqlite::Synchronous::Normal.as_str(), "normal");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }

    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            _ => Err("expected `full` or `normal`".to_owned()),
        }
    }
}

/// The default [`SqliteConfig::busy_timeout`]: 5 seconds.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings of a [`SqliteStore`].
///
/// ```
/// use kv_store_sqlite::{SqliteConfig, Synchronous};
///
/// let cfg = SqliteConfig::new("data/kv.sqlite");
/// assert_eq!(cfg.synchronous, Synchronous::Full);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file (created if missing; its directory must exist), or `:memory:` for a
    /// private in-memory database.
    pub path: PathBuf,
    /// When a commit is on disk.
    pub synchronous: Synchronous,
    /// How long an operation waits for another connection (of this or another process) that
    /// holds the write lock, before it fails with a temporary `Unavailable` error.
    pub busy_timeout: Duration,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl SqliteConfig {
    /// The default settings for the database at `path`.
    ///
    /// ```
    /// let cfg = kv_store_sqlite::SqliteConfig::new("/var/lib/app/kv.sqlite");
    /// assert_eq!(cfg.busy_timeout, std::time::Duration::from_secs(5));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `sqlite://PATH` with the parameters `synchronous=full|normal`,
    /// `busy_timeout_ms=MILLIS` and `default_collection=NAME`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `sqlite://data/kv.db` is
    /// relative to the working directory, `sqlite:///var/lib/kv.db` is absolute, and
    /// `sqlite://:memory:` is a private in-memory database.
    ///
    /// ```
    /// use kv_store_sqlite::{SqliteConfig, Synchronous};
    ///
    /// let cfg = SqliteConfig::from_url("sqlite://data/kv.db?synchronous=normal").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv.db"));
    /// assert_eq!(cfg.synchronous, Synchronous::Normal);
    ///
    /// let cfg = SqliteConfig::from_url("sqlite:///var/lib/app/kv.db?busy_timeout_ms=100").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv.db"));
    /// assert_eq!(cfg.busy_timeout.as_millis(), 100);
    ///
    /// assert!(SqliteConfig::from_url("sqlite://").is_err()); // no path
    /// assert!(SqliteConfig::from_url("sqlite://kv.db?synchronus=full").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["synchronous", "busy_timeout_ms", "default_collection"])?;
        let mut cfg = SqliteConfig::new(url.target());
        if let Some(s) = url.parse_param::<Synchronous>("synchronous")? {
            cfg.synchronous = s;
        }
        if let Some(ms) = url.parse_param::<u64>("busy_timeout_ms")? {
            cfg.busy_timeout = Duration::from_millis(ms);
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// True for the in-memory database (`:memory:`).
    pub(crate) fn is_memory(&self) -> bool {
        self.path.as_os_str() == MEMORY_PATH
    }

    /// Checks the settings that can be wrong without touching the file.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::new(ErrorKind::Config, "the file path is empty"));
        }
        if self.default_collection.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "default_collection must not be empty",
            ));
        }
        if self.busy_timeout.as_millis() > i32::MAX as u128 {
            return Err(Error::new(
                ErrorKind::Config,
                "busy_timeout must be at most i32::MAX milliseconds (about 24 days)",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL (`sqlite://` + path, plus a non-default synchronous).
    pub(crate) fn location(&self) -> String {
        let path = self.path.to_string_lossy();
        let mut s = String::with_capacity(crate::SCHEME.len() + 3 + path.len() + 20);
        s.push_str(crate::SCHEME);
        s.push_str("://");
        for c in path.chars() {
            match c {
                '%' => s.push_str("%25"),
                '?' => s.push_str("%3F"),
                c => s.push(c),
            }
        }
        if self.synchronous != Synchronous::Full {
            s.push_str("?synchronous=");
            s.push_str(self.synchronous.as_str());
        }
        s
    }
}

/// Builds a [`SqliteStore`].
///
/// ```
/// use std::time::Duration;
/// use kv_store_sqlite::{SqliteStore, Synchronous};
///
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::builder(dir.path().join("kv.db"))
///     .synchronous(Synchronous::Normal)
///     .busy_timeout(Duration::from_secs(1))
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SqliteStoreBuilder {
    config: SqliteConfig,
}

impl SqliteStoreBuilder {
    /// A builder for the database at `path`, with the default settings.
    ///
    /// ```
    /// let b = kv_store_sqlite::SqliteStoreBuilder::new("kv.db");
    /// assert_eq!(b.path(), std::path::Path::new("kv.db"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(SqliteConfig::new(path))
    }

    /// Starts from a configuration.
    ///
    /// ```
    /// use kv_store_sqlite::{SqliteConfig, SqliteStoreBuilder};
    ///
    /// let builder = SqliteStoreBuilder::from_config(SqliteConfig::from_url("sqlite://kv.db")?);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_config(config: SqliteConfig) -> Self {
        SqliteStoreBuilder { config }
    }

    /// When a commit is on disk (default: [`Synchronous::Full`]).
    ///
    /// ```
    /// use kv_store_sqlite::{SqliteStore, Synchronous};
    ///
    /// let builder = SqliteStore::builder("kv.db").synchronous(Synchronous::Normal);
    /// ```
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.config.synchronous = synchronous;
        self
    }

    /// How long to wait for the write lock held by another connection (default: 5 s).
    ///
    /// ```
    /// let builder = kv_store_sqlite::SqliteStore::builder("kv.db")
    ///     .busy_timeout(std::time::Duration::from_millis(250));
    /// ```
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.config.busy_timeout = timeout;
        self
    }

    /// The collection used for empty collection names.
    ///
    /// ```
    /// let builder = kv_store_sqlite::SqliteStore::builder("kv.db").default_collection("main");
    /// ```
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// The database path.
    ///
    /// ```
    /// assert!(kv_store_sqlite::SqliteStore::builder("data/kv.db").path().ends_with("kv.db"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the database; see [`SqliteStore::open`] for the errors.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = kv_store_sqlite::SqliteStore::builder(dir.path().join("kv.db")).open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self) -> Result<SqliteStore> {
        SqliteStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = SqliteConfig::from_url("sqlite://data/kv.db").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv.db"));
        let c = SqliteConfig::from_url(
            "sqlite:///var/kv.db?default_collection=main&busy_timeout_ms=10&synchronous=FULL",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv.db"));
        assert_eq!(c.default_collection, "main");
        assert_eq!(c.busy_timeout, Duration::from_millis(10));
        assert_eq!(c.synchronous, Synchronous::Full);
        let c = SqliteConfig::from_url("sqlite://a%20b.db").unwrap();
        assert_eq!(c.path, PathBuf::from("a b.db"));
        assert!(
            SqliteConfig::from_url("sqlite://:memory:")
                .unwrap()
                .is_memory()
        );
        for bad in [
            "redb://x",
            "sqlite://",
            "sqlite://?synchronous=full",
            "sqlite://x?synchronous=sometimes",
            "sqlite://x?busy_timeout_ms=-1",
            "sqlite://x?busy_timeout_ms=99999999999",
            "sqlite://x?default_collection=",
            "sqlite://x?unknown=1",
        ] {
            let e = SqliteConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.db", "/var/kv.db", "/tmp/100%?.db"] {
            let mut c = SqliteConfig::new(path);
            c.synchronous = Synchronous::Normal;
            let back = SqliteConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.path, PathBuf::from(path));
            assert_eq!(back.synchronous, Synchronous::Normal);
        }
        assert_eq!(SqliteConfig::new("/a").location(), "sqlite:///a");
    }
}
