//! Configuration: builder and `jsonfile://` URLs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::JsonFileStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "file path", "kv.json");

/// When a write is on disk.
///
/// ```
/// use kv_store_jsonfile::Durability;
///
/// assert_eq!("on_close".parse::<Durability>().unwrap(), Durability::OnClose);
/// assert_eq!(Durability::default(), Durability::Immediate);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Every write rewrites the file (temporary file, `fsync`, rename, `fsync` of the
    /// directory) before it returns: it survives a crash of the process and of the machine.
    /// The default.
    #[default]
    Immediate,
    /// Writes change the data in memory only; the file is rewritten (atomically and durably)
    /// by [`JsonFileStore::flush`](crate::JsonFileStore::flush), by `close()`, and when the
    /// last handle is dropped. A crash loses every write since the last flush (the file stays
    /// whole: it holds the last flushed state).
    OnClose,
}

impl Durability {
    /// The URL form: `immediate` or `on_close`.
    ///
    /// ```
    /// assert_eq!(kv_store_jsonfile::Durability::OnClose.as_str(), "on_close");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Immediate => "immediate",
            Durability::OnClose => "on_close",
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
            "on_close" => Ok(Durability::OnClose),
            _ => Err("expected `immediate` or `on_close`".to_owned()),
        }
    }
}

/// The settings of a [`JsonFileStore`].
///
/// ```
/// use kv_store_jsonfile::{JsonFileConfig, Durability};
///
/// let cfg = JsonFileConfig::new("data/kv.json");
/// assert_eq!(cfg.durability, Durability::Immediate);
/// assert_eq!(cfg.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonFileConfig {
    /// The JSON file. Created if missing (an empty file is an empty store); its directory must
    /// exist. The lock file is this path plus `.lock`.
    pub path: PathBuf,
    /// When a write is on disk.
    pub durability: Durability,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl JsonFileConfig {
    /// The default settings for the file at `path`.
    ///
    /// ```
    /// let cfg = kv_store_jsonfile::JsonFileConfig::new("/var/lib/app/kv.json");
    /// assert!(cfg.path.is_absolute());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonFileConfig {
            path: path.into(),
            durability: Durability::Immediate,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `jsonfile://PATH` with the parameters `durability=immediate|none` and
    /// `default_collection=NAME`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `jsonfile://data/kv.json`
    /// is relative to the working directory, `jsonfile:///var/lib/kv.json` is absolute.
    ///
    /// ```
    /// use kv_store_jsonfile::{JsonFileConfig, Durability};
    ///
    /// let cfg = JsonFileConfig::from_url("jsonfile://data/kv.json?durability=on_close").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv.json"));
    /// assert_eq!(cfg.durability, Durability::OnClose);
    ///
    /// let cfg = JsonFileConfig::from_url("jsonfile:///var/lib/app/kv.json").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv.json"));
    ///
    /// assert!(JsonFileConfig::from_url("jsonfile://").is_err()); // no path
    /// assert!(JsonFileConfig::from_url("jsonfile://t.json?durabilty=none").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["durability", "default_collection"])?;
        let mut cfg = JsonFileConfig::new(url.target());
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

    /// The store's location as a URL (`jsonfile://` + path, plus the non-default durability).
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
        if self.durability == Durability::OnClose {
            s.push_str("?durability=on_close");
        }
        s
    }
}

/// Builds a [`JsonFileStore`].
///
/// ```
/// use kv_store_jsonfile::{JsonFileStore, Durability};
///
/// let dir = tempfile::tempdir()?;
/// let store = JsonFileStore::builder(dir.path().join("kv.json"))
///     .durability(Durability::OnClose)
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct JsonFileStoreBuilder {
    config: JsonFileConfig,
}

impl JsonFileStoreBuilder {
    /// A builder for the file at `path`, with the default settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(JsonFileConfig::new(path))
    }

    /// Starts from a configuration.
    pub fn from_config(config: JsonFileConfig) -> Self {
        JsonFileStoreBuilder { config }
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

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the file; see [`JsonFileStore::open`] for the errors.
    pub fn open(self) -> Result<JsonFileStore> {
        JsonFileStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = JsonFileConfig::from_url("jsonfile://data/kv.json").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv.json"));
        let c = JsonFileConfig::from_url(
            "jsonfile:///var/kv.json?default_collection=main&durability=immediate",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv.json"));
        assert_eq!(c.default_collection, "main");
        let c = JsonFileConfig::from_url("jsonfile://a%20b").unwrap();
        assert_eq!(c.path, PathBuf::from("a b"));
        for bad in [
            "memory://",
            "jsonfile://",
            "jsonfile://?durability=on_close",
            "jsonfile://x?durability=sometimes",
            "jsonfile://x?default_collection=",
            "jsonfile://x?unknown=1",
        ] {
            let e = JsonFileConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.json", "/var/kv.json", "/tmp/100%?"] {
            let mut c = JsonFileConfig::new(path);
            c.durability = Durability::OnClose;
            let back = JsonFileConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.path, PathBuf::from(path));
            assert_eq!(back.durability, Durability::OnClose);
        }
    }
}
