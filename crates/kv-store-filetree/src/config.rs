//! Configuration: builder and `filetree://` URLs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::FileTreeStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "directory", "dir");

/// When a write is on disk.
///
/// ```
/// use kv_store_filetree::Durability;
///
/// assert_eq!("none".parse::<Durability>().unwrap(), Durability::None);
/// assert_eq!(Durability::default(), Durability::Immediate);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Every write `fsync`s the new file and its directory before it returns: it survives a
    /// crash of the process and of the machine. The default.
    #[default]
    Immediate,
    /// Writes are still atomic (temporary file + rename: a reader or a crash never sees half a
    /// file), but nothing is `fsync`ed: a crash of the process loses nothing (the kernel has
    /// the data), a crash of the machine may lose recent writes.
    None,
}

impl Durability {
    /// The URL form: `immediate` or `none`.
    ///
    /// ```
    /// assert_eq!(kv_store_filetree::Durability::None.as_str(), "none");
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

/// The settings of a [`FileTreeStore`].
///
/// ```
/// use kv_store_filetree::{FileTreeConfig, Durability};
///
/// let cfg = FileTreeConfig::new("data/tree");
/// assert_eq!(cfg.durability, Durability::Immediate);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileTreeConfig {
    /// The root directory of the tree. Created (with its parents) if missing.
    pub root: PathBuf,
    /// When a write is on disk.
    pub durability: Durability,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl FileTreeConfig {
    /// The default settings for the tree at `root`.
    ///
    /// ```
    /// let cfg = kv_store_filetree::FileTreeConfig::new("/var/lib/app/tree");
    /// assert!(cfg.root.is_absolute());
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileTreeConfig {
            root: root.into(),
            durability: Durability::Immediate,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `filetree://PATH` with the parameters `durability=immediate|none` and
    /// `default_collection=NAME`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `filetree://data/tree`
    /// is relative to the working directory, `filetree:///var/lib/tree` is absolute.
    ///
    /// ```
    /// use kv_store_filetree::{FileTreeConfig, Durability};
    ///
    /// let cfg = FileTreeConfig::from_url("filetree://data/tree?durability=none").unwrap();
    /// assert_eq!(cfg.root.to_str(), Some("data/tree"));
    /// assert_eq!(cfg.durability, Durability::None);
    ///
    /// let cfg = FileTreeConfig::from_url("filetree:///var/lib/app/tree").unwrap();
    /// assert_eq!(cfg.root.to_str(), Some("/var/lib/app/tree"));
    ///
    /// assert!(FileTreeConfig::from_url("filetree://").is_err()); // no path
    /// assert!(FileTreeConfig::from_url("filetree://t?durabilty=none").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["durability", "default_collection"])?;
        let mut cfg = FileTreeConfig::new(url.target());
        if let Some(d) = url.parse_param::<Durability>("durability")? {
            cfg.durability = d;
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.root.as_os_str().is_empty() {
            return Err(Error::new(ErrorKind::Config, "the root directory is empty"));
        }
        if self.default_collection.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "default_collection must not be empty",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL (`filetree://` + path, plus the non-default durability).
    pub(crate) fn location(&self) -> String {
        let path = self.root.to_string_lossy();
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

/// Builds a [`FileTreeStore`].
///
/// ```
/// use kv_store_filetree::{FileTreeStore, Durability};
///
/// let dir = tempfile::tempdir()?;
/// let store = FileTreeStore::builder(dir.path().join("tree"))
///     .durability(Durability::None)
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct FileTreeStoreBuilder {
    config: FileTreeConfig,
}

impl FileTreeStoreBuilder {
    /// A builder for the tree at `root`, with the default settings.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::from_config(FileTreeConfig::new(root))
    }

    /// Starts from a configuration.
    pub fn from_config(config: FileTreeConfig) -> Self {
        FileTreeStoreBuilder { config }
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

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Opens (or creates) the tree; see [`FileTreeStore::open`] for the errors.
    pub fn open(self) -> Result<FileTreeStore> {
        FileTreeStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = FileTreeConfig::from_url("filetree://data/tree").unwrap();
        assert_eq!(c.root, PathBuf::from("data/tree"));
        let c = FileTreeConfig::from_url(
            "filetree:///var/tree?default_collection=main&durability=immediate",
        )
        .unwrap();
        assert_eq!(c.root, PathBuf::from("/var/tree"));
        assert_eq!(c.default_collection, "main");
        let c = FileTreeConfig::from_url("filetree://a%20b").unwrap();
        assert_eq!(c.root, PathBuf::from("a b"));
        for bad in [
            "memory://",
            "filetree://",
            "filetree://?durability=none",
            "filetree://x?durability=sometimes",
            "filetree://x?default_collection=",
            "filetree://x?unknown=1",
        ] {
            let e = FileTreeConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/tree", "/var/tree", "/tmp/100%?"] {
            let mut c = FileTreeConfig::new(path);
            c.durability = Durability::None;
            let back = FileTreeConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.root, PathBuf::from(path));
            assert_eq!(back.durability, Durability::None);
        }
    }
}
