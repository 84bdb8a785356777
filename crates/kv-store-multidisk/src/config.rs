//! Configuration: builder and `multidisk://` URLs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::MultiDiskStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "directory path", "dir");

/// When a write is on disk.
///
/// ```
/// use kv_store_multidisk::Durability;
///
/// assert_eq!("none".parse::<Durability>().unwrap(), Durability::None);
/// assert_eq!(Durability::default(), Durability::Immediate);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// A write returns once its transaction is on disk (redb `Durability::Immediate`, which
    /// ends the commit with `File::sync_data`). It survives a crash of the process and of the
    /// machine. The default.
    #[default]
    Immediate,
    /// A write returns once it is committed in memory (redb `Durability::None`); it reaches the
    /// disk with a later durable commit of the same collection file, which redb makes when the
    /// store is closed or dropped. A crash loses the writes since the last durable commit, as
    /// whole transactions (each file stays consistent).
    None,
}

impl Durability {
    /// The URL form: `immediate` or `none`.
    ///
    /// ```
    /// assert_eq!(kv_store_multidisk::Durability::None.as_str(), "none");
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

/// The settings of a [`MultiDiskStore`].
///
/// ```
/// use kv_store_multidisk::{Durability, MultiDiskConfig};
///
/// let cfg = MultiDiskConfig::new("data/kv");
/// assert_eq!(cfg.durability, Durability::Immediate);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiDiskConfig {
    /// The directory of the store. Created (with its parents) if missing.
    pub path: PathBuf,
    /// When a write is on disk.
    pub durability: Durability,
    /// The collection used for empty collection names.
    pub default_collection: String,
    /// redb's page cache in bytes, per collection file; `None` keeps redb's default (1 GiB,
    /// allocated only as pages are read).
    pub cache_size: Option<usize>,
}

impl MultiDiskConfig {
    /// The default settings for the directory at `path`.
    ///
    /// ```
    /// let cfg = kv_store_multidisk::MultiDiskConfig::new("/var/lib/app/kv");
    /// assert_eq!(cfg.cache_size, None);
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        MultiDiskConfig {
            path: path.into(),
            durability: Durability::Immediate,
            default_collection: DEFAULT_COLLECTION.to_owned(),
            cache_size: None,
        }
    }

    /// Parses `multidisk://DIR` with the parameters `durability=immediate|none`,
    /// `default_collection=NAME` and `cache_size=BYTES`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `multidisk://data/kv` is
    /// relative to the working directory, `multidisk:///var/lib/kv` is absolute.
    ///
    /// ```
    /// use kv_store_multidisk::{Durability, MultiDiskConfig};
    ///
    /// let cfg = MultiDiskConfig::from_url("multidisk://data/kv?durability=none").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv"));
    /// assert_eq!(cfg.durability, Durability::None);
    ///
    /// let cfg = MultiDiskConfig::from_url("multidisk:///var/lib/app/kv").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv"));
    ///
    /// assert!(MultiDiskConfig::from_url("multidisk://").is_err()); // no path
    /// assert!(MultiDiskConfig::from_url("multidisk://kv?durabilty=none").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["durability", "default_collection", "cache_size"])?;
        let mut cfg = MultiDiskConfig::new(url.target());
        if let Some(d) = url.parse_param::<Durability>("durability")? {
            cfg.durability = d;
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.cache_size = url.parse_param::<usize>("cache_size")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the settings that can be wrong without touching the disk.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::new(ErrorKind::Config, "the directory path is empty"));
        }
        if self.default_collection.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "default_collection must not be empty",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL (`multidisk://` + path, plus the non-default durability).
    pub(crate) fn location(&self) -> String {
        let path = self.path.to_string_lossy();
        let mut s = String::with_capacity(crate::SCHEME.len() + 3 + path.len() + 16);
        s.push_str(crate::SCHEME);
        s.push_str("://");
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

/// Builds a [`MultiDiskStore`].
///
/// ```
/// use kv_store_multidisk::{Durability, MultiDiskStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = MultiDiskStore::builder(dir.path().join("kv"))
///     .durability(Durability::None)
///     .default_collection("main")
///     .cache_size(16 << 20)
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct MultiDiskStoreBuilder {
    config: MultiDiskConfig,
}

impl MultiDiskStoreBuilder {
    /// A builder for the directory at `path`, with the default settings.
    ///
    /// ```
    /// let b = kv_store_multidisk::MultiDiskStoreBuilder::new("kv");
    /// assert_eq!(b.path(), std::path::Path::new("kv"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(MultiDiskConfig::new(path))
    }

    /// Starts from a configuration.
    ///
    /// ```
    /// use kv_store_multidisk::{MultiDiskConfig, MultiDiskStoreBuilder};
    ///
    /// let cfg = MultiDiskConfig::from_url("multidisk://data/kv?durability=none")?;
    /// let builder = MultiDiskStoreBuilder::from_config(cfg);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_config(config: MultiDiskConfig) -> Self {
        MultiDiskStoreBuilder { config }
    }

    /// When a write is on disk (default: [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// redb's page cache in bytes, per collection file (default: redb's 1 GiB, allocated as
    /// used).
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.config.cache_size = Some(bytes);
        self
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the store; see [`MultiDiskStore::open`] for the errors.
    pub fn open(self) -> Result<MultiDiskStore> {
        MultiDiskStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = MultiDiskConfig::from_url("multidisk://data/kv").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv"));
        let c = MultiDiskConfig::from_url(
            "multidisk:///var/kv?default_collection=main&cache_size=1024&durability=immediate",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv"));
        assert_eq!(c.default_collection, "main");
        assert_eq!(c.cache_size, Some(1024));
        assert_eq!(c.durability, Durability::Immediate);
        let c = MultiDiskConfig::from_url("multidisk://a%20b").unwrap();
        assert_eq!(c.path, PathBuf::from("a b"));
        for bad in [
            "memory://",
            "redb://x",
            "multidisk://",
            "multidisk://?durability=none",
            "multidisk://x?durability=sometimes",
            "multidisk://x?cache_size=-1",
            "multidisk://x?default_collection=",
            "multidisk://x?unknown=1",
        ] {
            let e = MultiDiskConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv", "/var/kv", "/tmp/100%?"] {
            let mut c = MultiDiskConfig::new(path);
            c.durability = Durability::None;
            let back = MultiDiskConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.path, PathBuf::from(path));
            assert_eq!(back.durability, Durability::None);
        }
        assert_eq!(MultiDiskConfig::new("/a").location(), "multidisk:///a");
    }
}
