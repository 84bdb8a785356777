//! Configuration: builder and `duckdb://` URLs.

use std::path::{Path, PathBuf};

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::DuckDbStore;
use crate::format;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "file path", "path.duckdb").or_memory();

/// The path that opens an in-memory database (`duckdb://:memory:`).
pub const MEMORY: &str = ":memory:";

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// A database file (created if missing; its directory must exist). DuckDB keeps its
    /// write-ahead log beside it (`PATH.wal`), and the store its lock file (`PATH.lock`).
    File(PathBuf),
    /// A private in-memory database, gone when the store is closed (not durable).
    Memory,
}

/// The settings of a [`DuckDbStore`].
///
/// ```
/// use kv_store_duckdb::{DuckDbConfig, Location};
///
/// let cfg = DuckDbConfig::new("data/kv.duckdb");
/// assert_eq!(cfg.location, Location::File("data/kv.duckdb".into()));
/// assert_eq!(cfg.table, "kv_entries");
/// assert_eq!(cfg.default_collection, "default_collection");
/// assert_eq!(DuckDbConfig::memory().location, Location::Memory);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DuckDbConfig {
    /// The database file, or memory.
    pub location: Location,
    /// The table of the entries (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters; default
    /// `kv_entries`, as py-key-value). Its version sequence is `<table>_version`.
    pub table: String,
    /// The collection used for empty collection names.
    pub default_collection: String,
    /// DuckDB's worker threads (`None`: DuckDB's default, one per core).
    pub threads: Option<u32>,
    /// DuckDB's memory limit, in DuckDB's syntax (`"512MB"`, `"2GiB"`; `None`: DuckDB's default,
    /// 80 % of the RAM).
    pub memory_limit: Option<String>,
}

impl DuckDbConfig {
    /// The default settings for the database file at `path` (`":memory:"` means memory).
    ///
    /// ```
    /// let cfg = kv_store_duckdb::DuckDbConfig::new("/var/lib/app/kv.duckdb");
    /// assert!(cfg.threads.is_none());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let location = if path.as_os_str() == MEMORY {
            Location::Memory
        } else {
            Location::File(path)
        };
        DuckDbConfig {
            location,
            table: format::DEFAULT_TABLE.to_owned(),
            default_collection: DEFAULT_COLLECTION.to_owned(),
            threads: None,
            memory_limit: None,
        }
    }

    /// The default settings for a private in-memory database.
    ///
    /// ```
    /// assert_eq!(kv_store_duckdb::DuckDbConfig::memory().location, kv_store_duckdb::Location::Memory);
    /// ```
    pub fn memory() -> Self {
        Self::new(MEMORY)
    }

    /// Parses `duckdb://PATH` with the parameters `table=NAME`, `default_collection=NAME`,
    /// `threads=N` and `memory_limit=SIZE`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `duckdb://data/kv.duckdb`
    /// is relative to the working directory, `duckdb:///var/lib/kv.duckdb` is absolute, and
    /// `duckdb://:memory:` is a private in-memory database.
    ///
    /// ```
    /// use kv_store_duckdb::{DuckDbConfig, Location};
    ///
    /// let cfg = DuckDbConfig::from_url("duckdb://data/kv.duckdb?table=cache").unwrap();
    /// assert_eq!(cfg.location, Location::File("data/kv.duckdb".into()));
    /// assert_eq!(cfg.table, "cache");
    ///
    /// let cfg = DuckDbConfig::from_url("duckdb:///var/lib/app/kv.duckdb").unwrap();
    /// assert_eq!(cfg.location, Location::File("/var/lib/app/kv.duckdb".into()));
    ///
    /// assert_eq!(DuckDbConfig::from_url("duckdb://:memory:").unwrap().location, Location::Memory);
    /// assert!(DuckDbConfig::from_url("duckdb://").is_err()); // no path
    /// assert!(DuckDbConfig::from_url("duckdb://kv.duckdb?tabel=x").is_err()); // typo
    /// assert!(DuckDbConfig::from_url("duckdb://kv.duckdb?table=a;b").is_err()); // not an identifier
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["table", "default_collection", "threads", "memory_limit"])?;
        let mut cfg = DuckDbConfig::new(url.target());
        if let Some(table) = url.param("table") {
            cfg.table = table.to_owned();
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.threads = url.parse_param::<u32>("threads")?;
        cfg.memory_limit = url.param("memory_limit").map(str::to_owned);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the settings that can be wrong without touching the file.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Location::File(path) = &self.location
            && path.as_os_str().is_empty()
        {
            return Err(Error::new(ErrorKind::Config, "the file path is empty"));
        }
        format::check_table_name(&self.table)?;
        if self.default_collection.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "default_collection must not be empty",
            ));
        }
        if self.threads == Some(0) {
            return Err(Error::new(ErrorKind::Config, "threads must be at least 1"));
        }
        if self.memory_limit.as_deref() == Some("") {
            return Err(Error::new(
                ErrorKind::Config,
                "memory_limit must not be empty",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL (`duckdb://` + path, plus a non-default table).
    pub(crate) fn location_url(&self) -> String {
        let mut s = format!("{}://", crate::SCHEME);
        match &self.location {
            Location::Memory => s.push_str(MEMORY),
            Location::File(path) => {
                // Keep the URL parseable: `%` and `?` would otherwise be read as escapes or a
                // query.
                for c in path.to_string_lossy().chars() {
                    match c {
                        '%' => s.push_str("%25"),
                        '?' => s.push_str("%3F"),
                        c => s.push(c),
                    }
                }
            }
        }
        if self.table != format::DEFAULT_TABLE {
            s.push_str("?table=");
            s.push_str(&self.table);
        }
        s
    }
}

/// Builds a [`DuckDbStore`].
///
/// ```
/// use kv_store_duckdb::DuckDbStore;
///
/// let dir = tempfile::tempdir()?;
/// let store = DuckDbStore::builder(dir.path().join("kv.duckdb"))
///     .table("cache")
///     .default_collection("main")
///     .threads(1)
///     .memory_limit("256MB")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DuckDbStoreBuilder {
    config: DuckDbConfig,
}

impl DuckDbStoreBuilder {
    /// A builder for the database file at `path` (`":memory:"` means memory), with the default
    /// settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(DuckDbConfig::new(path))
    }

    /// Starts from a configuration.
    ///
    /// ```
    /// use kv_store_duckdb::{DuckDbConfig, DuckDbStoreBuilder};
    ///
    /// let builder = DuckDbStoreBuilder::from_config(DuckDbConfig::from_url("duckdb://:memory:")?);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_config(config: DuckDbConfig) -> Self {
        DuckDbStoreBuilder { config }
    }

    /// The table of the entries (default `kv_entries`).
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.config.table = name.into();
        self
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// DuckDB's worker threads.
    pub fn threads(mut self, threads: u32) -> Self {
        self.config.threads = Some(threads);
        self
    }

    /// DuckDB's memory limit (`"512MB"`, `"2GiB"`).
    pub fn memory_limit(mut self, limit: impl Into<String>) -> Self {
        self.config.memory_limit = Some(limit.into());
        self
    }

    /// The database file, if not in memory.
    ///
    /// ```
    /// let b = kv_store_duckdb::DuckDbStore::builder("data/kv.duckdb");
    /// assert!(b.path().unwrap().ends_with("kv.duckdb"));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match &self.config.location {
            Location::File(p) => Some(p),
            Location::Memory => None,
        }
    }

    /// Opens (or creates) the database; see [`DuckDbStore::open`] for the errors.
    pub fn open(self) -> Result<DuckDbStore> {
        DuckDbStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = DuckDbConfig::from_url("duckdb://data/kv.duckdb").unwrap();
        assert_eq!(c.location, Location::File(PathBuf::from("data/kv.duckdb")));
        let c = DuckDbConfig::from_url(
            "duckdb:///var/kv.duckdb?default_collection=main&table=T_1&threads=2&memory_limit=1GB",
        )
        .unwrap();
        assert_eq!(c.location, Location::File(PathBuf::from("/var/kv.duckdb")));
        assert_eq!(c.default_collection, "main");
        assert_eq!(c.table, "T_1");
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.memory_limit.as_deref(), Some("1GB"));
        let c = DuckDbConfig::from_url("DUCKDB://a%20b.duckdb").unwrap();
        assert_eq!(c.location, Location::File(PathBuf::from("a b.duckdb")));
        assert_eq!(
            DuckDbConfig::from_url("duckdb://:memory:")
                .unwrap()
                .location,
            Location::Memory
        );
        for bad in [
            "redb://x",
            "duckdb://",
            "duckdb://?table=x",
            "duckdb://x?table=",
            "duckdb://x?table=1abc",
            "duckdb://x?table=a-b",
            "duckdb://x?table=a%20b",
            "duckdb://x?threads=0",
            "duckdb://x?threads=-1",
            "duckdb://x?memory_limit=",
            "duckdb://x?default_collection=",
            "duckdb://x?unknown=1",
        ] {
            let e = DuckDbConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.duckdb", "/var/kv.duckdb", "/tmp/100%?.duckdb"] {
            let mut c = DuckDbConfig::new(path);
            c.table = "other".into();
            let back = DuckDbConfig::from_url(&c.location_url()).unwrap();
            assert_eq!(back.location, Location::File(PathBuf::from(path)));
            assert_eq!(back.table, "other");
        }
        assert_eq!(DuckDbConfig::new("/a").location_url(), "duckdb:///a");
        assert_eq!(DuckDbConfig::memory().location_url(), "duckdb://:memory:");
    }
}
