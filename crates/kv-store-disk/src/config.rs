//! Configuration: builder and `redb://` / `disk://` URLs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::DiskStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl =
    PathUrl::new(crate::SCHEME, "file path", "path.redb").alias(crate::SCHEME_ALIAS);

/// When a write is on disk.
///
/// ```
/// use kv_store_disk::Durability;
///
/// assert_eq!("none".parse::<Durability>().unwrap(), Durability::None);
/// assert_eq!(Durability::default(), Durability::Immediate);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// A write returns once its transaction is on disk (redb `Durability::Immediate`: the
    /// commit ends with an `fsync`-class flush, `File::sync_data`). It survives a crash of the
    /// process and of the machine. The default.
    #[default]
    Immediate,
    /// A write returns once its transaction is committed in memory (redb `Durability::None`):
    /// every later operation of this process sees it, but it reaches the disk only with a later
    /// durable commit, which redb makes when the store is closed or dropped. A crash loses the
    /// writes since the last durable commit, as whole transactions (the file stays consistent).
    None,
}

impl Durability {
    /// The URL form: `immediate` or `none`.
    ///
    /// ```
    /// assert_eq!(kv_store_disk::Durability::None.as_str(), "none");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Immediate => "immediate",
            Durability::None => "none",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "immediate" => Ok(Durability::Immediate),
            "none" => Ok(Durability::None),
            _ => Err("expected `immediate` or `none`".to_owned()),
        }
    }
}

/// The settings of a [`DiskStore`].
///
/// ```
/// use kv_store_disk::{DiskConfig, Durability};
///
/// let cfg = DiskConfig::new("data/kv.redb");
/// assert_eq!(cfg.durability, Durability::Immediate);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskConfig {
    /// The redb file. Created (with a new database) if missing or empty; its directory must
    /// exist.
    pub path: PathBuf,
    /// When a write is on disk.
    pub durability: Durability,
    /// The collection used for empty collection names.
    pub default_collection: String,
    /// redb's page cache in bytes; `None` keeps redb's default (1 GiB, allocated as used).
    pub cache_size: Option<usize>,
    /// Verify every page checksum when opening (reads the whole file). Without it redb trusts a
    /// file that was closed cleanly, and a file damaged outside redb may be reported only when
    /// its damaged pages are read.
    pub check_integrity: bool,
}

impl DiskConfig {
    /// The default settings for the file at `path`.
    ///
    /// ```
    /// let cfg = kv_store_disk::DiskConfig::new("/var/lib/app/kv.redb");
    /// assert!(!cfg.check_integrity);
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DiskConfig {
            path: path.into(),
            durability: Durability::Immediate,
            default_collection: DEFAULT_COLLECTION.to_owned(),
            cache_size: None,
            check_integrity: false,
        }
    }

    /// Parses `redb://PATH` or `disk://PATH` with the parameters `durability=immediate|none`,
    /// `default_collection=NAME`, `cache_size=BYTES` and `check_integrity=true|false`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `redb://data/kv.redb` is
    /// relative to the working directory, `redb:///var/lib/kv.redb` is absolute.
    ///
    /// ```
    /// use kv_store_disk::{DiskConfig, Durability};
    ///
    /// let cfg = DiskConfig::from_url("redb://data/kv.redb?durability=none").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv.redb"));
    /// assert_eq!(cfg.durability, Durability::None);
    ///
    /// let cfg = DiskConfig::from_url("disk:///var/lib/app/kv.redb").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv.redb"));
    ///
    /// assert!(DiskConfig::from_url("redb://").is_err()); // no path
    /// assert!(DiskConfig::from_url("redb://kv.redb?durabilty=none").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&[
            "durability",
            "default_collection",
            "cache_size",
            "check_integrity",
        ])?;
        let mut cfg = DiskConfig::new(url.target());
        if let Some(d) = url.parse_param::<Durability>("durability")? {
            cfg.durability = d;
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.cache_size = url.parse_param::<usize>("cache_size")?;
        if let Some(check) = url.parse_param::<bool>("check_integrity")? {
            cfg.check_integrity = check;
        }
        cfg.validate()?;
        Ok(cfg)
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
        Ok(())
    }

    /// The store's location as a URL (`redb://` + path, plus the non-default durability).
    pub(crate) fn location(&self) -> String {
        let path = self.path.to_string_lossy();
        let mut s = String::with_capacity(crate::SCHEME.len() + 3 + path.len() + 16);
        s.push_str(crate::SCHEME);
        s.push_str("://");
        // Keep the URL parseable: `%` and `?` would otherwise be read as escapes or a query.
        for c in path.chars() {
            match c {
                '%' => s.push_str("%25"),
                '?' => s.push_str("%3F"),
                c => s.push(c),
            }
        }
        if self.durability == Durability::None {
            s.push_str("?durability=none");
        }
        s
    }
}

/// Builds a [`DiskStore`].
///
/// ```
/// use kv_store_disk::{DiskStore, Durability};
///
/// let dir = tempfile::tempdir()?;
/// let store = DiskStore::builder(dir.path().join("kv.redb"))
///     .durability(Durability::None)
///     .default_collection("main")
///     .cache_size(64 * 1024 * 1024)
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DiskStoreBuilder {
    config: DiskConfig,
}

impl DiskStoreBuilder {
    /// A builder for the file at `path`, with the default settings.
    ///
    /// ```
    /// let b = kv_store_disk::DiskStoreBuilder::new("kv.redb");
    /// assert_eq!(b.path(), std::path::Path::new("kv.redb"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(DiskConfig::new(path))
    }

    /// Starts from a configuration.
    ///
    /// ```
    /// use kv_store_disk::{DiskConfig, DiskStoreBuilder};
    ///
    /// let cfg = DiskConfig::from_url("redb://data/kv.redb?durability=none")?;
    /// let builder = DiskStoreBuilder::from_config(cfg);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_config(config: DiskConfig) -> Self {
        DiskStoreBuilder { config }
    }

    /// When a write is on disk (default: [`Durability::Immediate`]).
    ///
    /// ```
    /// use kv_store_disk::{DiskStore, Durability};
    ///
    /// let builder = DiskStore::builder("kv.redb").durability(Durability::None);
    /// ```
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// The collection used for empty collection names.
    ///
    /// ```
    /// let builder = kv_store_disk::DiskStore::builder("kv.redb").default_collection("main");
    /// ```
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// redb's page cache in bytes (default: redb's 1 GiB, allocated as used).
    ///
    /// ```
    /// let builder = kv_store_disk::DiskStore::builder("kv.redb").cache_size(64 << 20);
    /// ```
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.config.cache_size = Some(bytes);
        self
    }

    /// Verify every page checksum when opening (reads the whole file; default: off).
    ///
    /// ```
    /// let builder = kv_store_disk::DiskStore::builder("kv.redb").check_integrity(true);
    /// ```
    pub fn check_integrity(mut self, enabled: bool) -> Self {
        self.config.check_integrity = enabled;
        self
    }

    /// The file path.
    ///
    /// ```
    /// let builder = kv_store_disk::DiskStore::builder("data/kv.redb");
    /// assert!(builder.path().ends_with("kv.redb"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the file; see [`DiskStore::open`] for the errors.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = kv_store_disk::DiskStore::builder(dir.path().join("kv.redb")).open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self) -> Result<DiskStore> {
        DiskStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = DiskConfig::from_url("redb://data/kv.redb").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv.redb"));
        let c = DiskConfig::from_url("redb:///var/kv.redb?default_collection=main&cache_size=1024&check_integrity=true&durability=immediate").unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv.redb"));
        assert_eq!(c.default_collection, "main");
        assert_eq!(c.cache_size, Some(1024));
        assert!(c.check_integrity);
        assert_eq!(c.durability, Durability::Immediate);
        let c = DiskConfig::from_url("disk://a%20b.redb").unwrap();
        assert_eq!(c.path, PathBuf::from("a b.redb"));
        for bad in [
            "memory://",
            "redb://",
            "redb://?durability=none",
            "redb://x?durability=sometimes",
            "redb://x?cache_size=-1",
            "redb://x?default_collection=",
            "redb://x?check_integrity=yes",
            "redb://x?unknown=1",
        ] {
            let e = DiskConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.redb", "/var/kv.redb", "/tmp/100%?.redb"] {
            let mut c = DiskConfig::new(path);
            c.durability = Durability::None;
            let back = DiskConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.path, PathBuf::from(path));
            assert_eq!(back.durability, Durability::None);
        }
        assert_eq!(DiskConfig::new("/a").location(), "redb:///a");
    }
}
