//! Configuration: builder and `lmdb://` URLs.

use std::path::{Path, PathBuf};

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::LmdbStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "path", "dir");

/// The default initial map size: 64 MiB (the map grows on demand).
pub const DEFAULT_MAP_SIZE: usize = 64 << 20;

/// The default number of reader slots (LMDB's default): concurrent read transactions across
/// every process sharing the environment.
pub const DEFAULT_MAX_READERS: u32 = 126;

/// The settings of an [`LmdbStore`].
///
/// ```
/// use kv_store_lmdb::LmdbConfig;
///
/// let cfg = LmdbConfig::new("data/kv.lmdb");
/// assert_eq!(cfg.map_size, 64 << 20);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LmdbConfig {
    /// The environment directory (holds `data.mdb` and `lock.mdb`). Created if missing; its
    /// parent directory must exist.
    pub path: PathBuf,
    /// The initial map size in bytes (rounded up to 64 KiB). The map doubles whenever a write
    /// does not fit, so this is only a starting point; an environment that another process
    /// has grown opens with the larger size.
    pub map_size: usize,
    /// The number of reader slots, shared by every process that opens the environment (used
    /// only by the first process that opens it).
    pub max_readers: u32,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl LmdbConfig {
    /// The default settings for the environment directory `path`.
    ///
    /// ```
    /// let cfg = kv_store_lmdb::LmdbConfig::new("/var/lib/app/kv.lmdb");
    /// assert_eq!(cfg.max_readers, 126);
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LmdbConfig {
            path: path.into(),
            map_size: DEFAULT_MAP_SIZE,
            max_readers: DEFAULT_MAX_READERS,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `lmdb://PATH` with the parameters `map_size=BYTES`, `max_readers=N` and
    /// `default_collection=NAME`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `lmdb://data/kv.lmdb` is
    /// relative to the working directory, `lmdb:///var/lib/kv.lmdb` is absolute.
    ///
    /// ```
    /// use kv_store_lmdb::LmdbConfig;
    ///
    /// let cfg = LmdbConfig::from_url("lmdb://data/kv.lmdb?map_size=1048576").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv.lmdb"));
    /// assert_eq!(cfg.map_size, 1 << 20);
    ///
    /// let cfg = LmdbConfig::from_url("lmdb:///var/lib/app/kv.lmdb").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv.lmdb"));
    ///
    /// assert!(LmdbConfig::from_url("lmdb://").is_err()); // no path
    /// assert!(LmdbConfig::from_url("lmdb://kv?mapsize=1").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["map_size", "max_readers", "default_collection"])?;
        let mut cfg = LmdbConfig::new(url.target());
        if let Some(n) = url.parse_param::<usize>("map_size")? {
            cfg.map_size = n;
        }
        if let Some(n) = url.parse_param::<u32>("max_readers")? {
            cfg.max_readers = n;
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the settings that can be wrong without touching the disk.
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
        if self.map_size == 0 || self.map_size > usize::MAX / 4 {
            return Err(Error::new(
                ErrorKind::Config,
                "map_size must be greater than zero and at most a quarter of the address space",
            ));
        }
        if self.max_readers == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "max_readers must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL.
    pub(crate) fn location(&self) -> String {
        let path = self.path.to_string_lossy();
        let mut s = String::with_capacity(crate::SCHEME.len() + 3 + path.len());
        s.push_str(crate::SCHEME);
        s.push_str("://");
        for c in path.chars() {
            match c {
                '%' => s.push_str("%25"),
                '?' => s.push_str("%3F"),
                c => s.push(c),
            }
        }
        s
    }
}

/// Builds an [`LmdbStore`].
///
/// ```
/// use kv_store_lmdb::LmdbStore;
///
/// let dir = tempfile::tempdir()?;
/// let store = LmdbStore::builder(dir.path().join("kv.lmdb"))
///     .map_size(1 << 20)
///     .max_readers(32)
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct LmdbStoreBuilder {
    config: LmdbConfig,
}

impl LmdbStoreBuilder {
    /// A builder for the environment directory `path`, with the default settings.
    ///
    /// ```
    /// let b = kv_store_lmdb::LmdbStoreBuilder::new("kv.lmdb");
    /// assert_eq!(b.path(), std::path::Path::new("kv.lmdb"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(LmdbConfig::new(path))
    }

    /// Starts from a configuration.
    ///
    /// ```
    /// use kv_store_lmdb::{LmdbConfig, LmdbStoreBuilder};
    ///
    /// let builder = LmdbStoreBuilder::from_config(LmdbConfig::from_url("lmdb://kv.lmdb")?);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_config(config: LmdbConfig) -> Self {
        LmdbStoreBuilder { config }
    }

    /// The initial map size in bytes (default: 64 MiB; it grows on demand).
    ///
    /// ```
    /// let builder = kv_store_lmdb::LmdbStore::builder("kv.lmdb").map_size(1 << 30);
    /// ```
    pub fn map_size(mut self, bytes: usize) -> Self {
        self.config.map_size = bytes;
        self
    }

    /// The number of reader slots (default: 126).
    ///
    /// ```
    /// let builder = kv_store_lmdb::LmdbStore::builder("kv.lmdb").max_readers(512);
    /// ```
    pub fn max_readers(mut self, readers: u32) -> Self {
        self.config.max_readers = readers;
        self
    }

    /// The collection used for empty collection names.
    ///
    /// ```
    /// let builder = kv_store_lmdb::LmdbStore::builder("kv.lmdb").default_collection("main");
    /// ```
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// The environment directory.
    ///
    /// ```
    /// assert!(kv_store_lmdb::LmdbStore::builder("data/kv.lmdb").path().ends_with("kv.lmdb"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the environment; see [`LmdbStore::open`] for the errors.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = kv_store_lmdb::LmdbStore::builder(dir.path().join("kv.lmdb")).open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self) -> Result<LmdbStore> {
        LmdbStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = LmdbConfig::from_url("lmdb://data/kv.lmdb").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv.lmdb"));
        let c = LmdbConfig::from_url(
            "lmdb:///var/kv.lmdb?default_collection=main&map_size=4096&max_readers=9",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv.lmdb"));
        assert_eq!(c.default_collection, "main");
        assert_eq!(c.map_size, 4096);
        assert_eq!(c.max_readers, 9);
        let c = LmdbConfig::from_url("lmdb://a%20b").unwrap();
        assert_eq!(c.path, PathBuf::from("a b"));
        for bad in [
            "redb://x",
            "lmdb://",
            "lmdb://?map_size=1",
            "lmdb://x?map_size=0",
            "lmdb://x?map_size=-1",
            "lmdb://x?max_readers=0",
            "lmdb://x?default_collection=",
            "lmdb://x?unknown=1",
        ] {
            let e = LmdbConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.lmdb", "/var/kv.lmdb", "/tmp/100%?.lmdb"] {
            let c = LmdbConfig::new(path);
            let back = LmdbConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.path, PathBuf::from(path));
        }
        assert_eq!(LmdbConfig::new("/a").location(), "lmdb:///a");
    }
}
