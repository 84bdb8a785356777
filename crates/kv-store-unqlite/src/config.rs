//! Configuration: builder and `unqlite://` URLs.

use std::path::{Path, PathBuf};

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::UnqliteStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "path", "file.db");

/// The settings of a [`UnqliteStore`].
///
/// ```
/// use kv_store_unqlite::UnqliteConfig;
///
/// let cfg = UnqliteConfig::new("data/kv.unqlite");
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnqliteConfig {
    /// The UnQLite database file. Created if missing (its directory must exist). UnQLite
    /// writes its rollback journal next to it (`PATH_unqlite_journal`) during a commit, and
    /// this store keeps a lock file `PATH.lock`.
    pub path: PathBuf,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl UnqliteConfig {
    /// The default settings for the database file `path`.
    ///
    /// ```
    /// let cfg = kv_store_unqlite::UnqliteConfig::new("/var/lib/app/kv");
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnqliteConfig {
            path: path.into(),
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `unqlite://PATH` with the parameter `default_collection=NAME`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `unqlite://data/kv` is
    /// relative to the working directory, `unqlite:///var/lib/kv` is absolute.
    ///
    /// ```
    /// use kv_store_unqlite::UnqliteConfig;
    ///
    /// let cfg = UnqliteConfig::from_url("unqlite://data/kv.db?default_collection=main").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv.db"));
    /// assert_eq!(cfg.default_collection, "main");
    ///
    /// let cfg = UnqliteConfig::from_url("unqlite:///var/lib/app/kv").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv"));
    ///
    /// assert!(UnqliteConfig::from_url("unqlite://").is_err()); // no path
    /// assert!(UnqliteConfig::from_url("unqlite://kv.db?synk=false").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["default_collection"])?;
        let mut cfg = UnqliteConfig::new(url.target());
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

    /// The store's location as a URL (scheme + path).
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
        s
    }
}

/// Builds a [`UnqliteStore`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let store = kv_store_unqlite::UnqliteStore::builder(dir.path().join("kv.db"))
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct UnqliteStoreBuilder {
    config: UnqliteConfig,
}

impl UnqliteStoreBuilder {
    /// A builder for the database file `path`, with the default settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(UnqliteConfig::new(path))
    }

    /// Starts from a configuration.
    pub fn from_config(config: UnqliteConfig) -> Self {
        UnqliteStoreBuilder { config }
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the database; see [`UnqliteStore::open`] for the errors.
    pub fn open(self) -> Result<UnqliteStore> {
        UnqliteStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = UnqliteConfig::from_url("unqlite://data/kv.db").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv.db"));
        let c = UnqliteConfig::from_url("unqlite:///var/kv.db?default_collection=main").unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv.db"));
        assert_eq!(c.default_collection, "main");
        let c = UnqliteConfig::from_url("unqlite://a%20b").unwrap();
        assert_eq!(c.path, PathBuf::from("a b"));
        for bad in [
            "memory://",
            "unqlite://",
            "unqlite://?default_collection=x",
            "unqlite://x?default_collection=",
            "unqlite://x?sync=false",
        ] {
            let e = UnqliteConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.db", "/var/kv.db", "/tmp/100%?"] {
            let c = UnqliteConfig::new(path);
            let back = UnqliteConfig::from_url(&c.location()).unwrap();
            assert_eq!(back, c);
        }
    }
}
