//! Configuration: builder and `rocksdb://` URLs.

use std::path::{Path, PathBuf};

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::RocksDbStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "path", "dir");

/// The settings of a [`RocksDbStore`].
///
/// ```
/// use kv_store_rocksdb::RocksDbConfig;
///
/// let cfg = RocksDbConfig::new("data/kv.rocksdb");
/// assert!(cfg.sync);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RocksDbConfig {
    /// The RocksDB directory. Created if missing (its parent must exist).
    pub path: PathBuf,
    /// `fsync` the write-ahead log before a write returns (`WriteOptions::set_sync(true)`,
    /// default `true`). With `false`, a write returns once RocksDB has written it to the log
    /// (in the operating system's cache): it survives a crash of the process, not of the
    /// machine.
    pub sync: bool,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl RocksDbConfig {
    /// The default settings for the database directory `path`.
    ///
    /// ```
    /// let cfg = kv_store_rocksdb::RocksDbConfig::new("/var/lib/app/kv");
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RocksDbConfig {
            path: path.into(),
            sync: true,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `rocksdb://PATH` with the parameters `sync=true|false` and
    /// `default_collection=NAME`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `rocksdb://data/kv` is
    /// relative to the working directory, `rocksdb:///var/lib/kv` is absolute.
    ///
    /// ```
    /// use kv_store_rocksdb::RocksDbConfig;
    ///
    /// let cfg = RocksDbConfig::from_url("rocksdb://data/kv?sync=false").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv"));
    /// assert!(!cfg.sync);
    ///
    /// let cfg = RocksDbConfig::from_url("rocksdb:///var/lib/app/kv").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv"));
    ///
    /// assert!(RocksDbConfig::from_url("rocksdb://").is_err()); // no path
    /// assert!(RocksDbConfig::from_url("rocksdb://kv?synk=false").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["sync", "default_collection"])?;
        let mut cfg = RocksDbConfig::new(url.target());
        if let Some(sync) = url.parse_param::<bool>("sync")? {
            cfg.sync = sync;
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::new(ErrorKind::Config, "the path is empty"));
        }
        if self.default_collection.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "default_collection must not be empty",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL (scheme + path, plus a non-default `sync`).
    pub(crate) fn location(&self) -> String {
        let path = self.path.to_string_lossy();
        let mut s = format!("{}://", crate::SCHEME);
        for c in path.chars() {
            match c {
                '%' => s.push_str("%25"),
                '?' => s.push_str("%3F"),
                c => s.push(c),
            }
        }
        if !self.sync {
            s.push_str("?sync=false");
        }
        s
    }
}

/// Builds a [`RocksDbStore`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let store = kv_store_rocksdb::RocksDbStore::builder(dir.path().join("kv"))
///     .sync(false)
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RocksDbStoreBuilder {
    config: RocksDbConfig,
}

impl RocksDbStoreBuilder {
    /// A builder for the database directory `path`, with the default settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(RocksDbConfig::new(path))
    }

    /// Starts from a configuration.
    pub fn from_config(config: RocksDbConfig) -> Self {
        RocksDbStoreBuilder { config }
    }

    /// Whether each write is flushed and synced before it returns (default `true`).
    pub fn sync(mut self, sync: bool) -> Self {
        self.config.sync = sync;
        self
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the database; see [`RocksDbStore::open`] for the errors.
    pub fn open(self) -> Result<RocksDbStore> {
        RocksDbStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = RocksDbConfig::from_url("rocksdb://data/kv").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv"));
        assert!(c.sync);
        let c = RocksDbConfig::from_url("rocksdb:///var/kv?sync=false&default_collection=main")
            .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv"));
        assert!(!c.sync);
        assert_eq!(c.default_collection, "main");
        let c = RocksDbConfig::from_url("rocksdb://a%20b").unwrap();
        assert_eq!(c.path, PathBuf::from("a b"));
        for bad in [
            "memory://",
            "rocksdb://",
            "rocksdb://?sync=false",
            "rocksdb://x?sync=maybe",
            "rocksdb://x?default_collection=",
            "rocksdb://x?unknown=1",
        ] {
            let e = RocksDbConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv", "/var/kv", "/tmp/100%?"] {
            let mut c = RocksDbConfig::new(path);
            c.sync = false;
            let back = RocksDbConfig::from_url(&c.location()).unwrap();
            assert_eq!(back, c);
        }
    }
}
