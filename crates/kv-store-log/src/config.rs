//! Configuration: builder and `log://` URLs.

use std::path::{Path, PathBuf};

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::LogStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "file path", "path.log");

/// The settings of a [`LogStore`].
///
/// ```
/// let cfg = kv_store_log::LogConfig::new("data/kv.log");
/// assert!(cfg.fsync);
/// assert_eq!(cfg.compact_ratio, 0.5);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LogConfig {
    /// The log file. Created if missing; its directory must exist. The lock file is this path
    /// plus `.lock`, the compaction's temporary file this path plus `.compact`.
    pub path: PathBuf,
    /// `true` (default): every write is `fsync`ed (`File::sync_data`) before it returns.
    /// `false`: writes reach the operating system at once (they survive a crash of the
    /// process) but the disk only with [`LogStore::flush`], a compaction or `close`; a crash
    /// of the machine may lose them. The store then declares `durable: false`.
    pub fsync: bool,
    /// The collection used for empty collection names.
    pub default_collection: String,
    /// Compact automatically after a write when the dead bytes (overwritten, deleted, culled
    /// entries and tombstones) are at least this fraction of the file, and the file is at least
    /// [`compact_min_bytes`](Self::compact_min_bytes) long. `0` turns automatic compaction
    /// off ([`LogStore::compact`] still works). Default `0.5`.
    pub compact_ratio: f64,
    /// The smallest file automatic compaction considers (default 1 MiB).
    pub compact_min_bytes: u64,
    /// Open a log with damaged lines in the middle by skipping them (a damaged line of a batch
    /// drops the whole batch), then compact it. Default `false`: such a log is refused with
    /// [`ErrorKind::Corrupt`] naming the offset, and nothing is changed.
    pub repair: bool,
}

impl LogConfig {
    /// The default settings for the log file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LogConfig {
            path: path.into(),
            fsync: true,
            default_collection: DEFAULT_COLLECTION.to_owned(),
            compact_ratio: 0.5,
            compact_min_bytes: 1 << 20,
            repair: false,
        }
    }

    /// Parses `log://PATH` with the parameters `fsync=true|false`, `default_collection=NAME`,
    /// `compact_ratio=FRACTION` (0 = never automatically), `compact_min_bytes=BYTES` and
    /// `repair=true|false`.
    ///
    /// The path is everything between `://` and `?`, percent-decoded: `log://data/kv.log` is
    /// relative to the working directory, `log:///var/lib/kv.log` is absolute.
    ///
    /// ```
    /// use kv_store_log::LogConfig;
    ///
    /// let cfg = LogConfig::from_url("log://data/kv.log?fsync=false").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("data/kv.log"));
    /// assert!(!cfg.fsync);
    ///
    /// let cfg = LogConfig::from_url("log:///var/lib/app/kv.log?compact_ratio=0").unwrap();
    /// assert_eq!(cfg.path.to_str(), Some("/var/lib/app/kv.log"));
    ///
    /// assert!(LogConfig::from_url("log://").is_err()); // no path
    /// assert!(LogConfig::from_url("log://kv.log?fsycn=false").is_err()); // typo
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&[
            "fsync",
            "default_collection",
            "compact_ratio",
            "compact_min_bytes",
            "repair",
        ])?;
        let mut cfg = LogConfig::new(url.target());
        if let Some(v) = url.parse_param::<bool>("fsync")? {
            cfg.fsync = v;
        }
        if let Some(name) = url.param("default_collection") {
            cfg.default_collection = name.to_owned();
        }
        if let Some(r) = url.parse_param::<f64>("compact_ratio")? {
            cfg.compact_ratio = r;
        }
        if let Some(b) = url.parse_param::<u64>("compact_min_bytes")? {
            cfg.compact_min_bytes = b;
        }
        if let Some(r) = url.parse_param::<bool>("repair")? {
            cfg.repair = r;
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
        if !(0.0..1.0).contains(&self.compact_ratio) {
            return Err(Error::new(
                ErrorKind::Config,
                "compact_ratio must be at least 0 (off) and below 1",
            ));
        }
        Ok(())
    }

    /// The store's location as a URL.
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
        if !self.fsync {
            s.push_str("?fsync=false");
        }
        s
    }
}

/// Builds a [`LogStore`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let store = kv_store_log::LogStore::builder(dir.path().join("kv.log"))
///     .fsync(false)
///     .compact_ratio(0.3)
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct LogStoreBuilder {
    config: LogConfig,
}

impl LogStoreBuilder {
    /// A builder for the log file at `path`, with the default settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(LogConfig::new(path))
    }

    /// Starts from a configuration.
    pub fn from_config(config: LogConfig) -> Self {
        LogStoreBuilder { config }
    }

    /// `fsync` every write before it returns (default `true`); see [`LogConfig::fsync`].
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.config.fsync = fsync;
        self
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// The dead-bytes fraction that triggers automatic compaction (`0` = off); see
    /// [`LogConfig::compact_ratio`].
    pub fn compact_ratio(mut self, ratio: f64) -> Self {
        self.config.compact_ratio = ratio;
        self
    }

    /// The smallest file automatic compaction considers.
    pub fn compact_min_bytes(mut self, bytes: u64) -> Self {
        self.config.compact_min_bytes = bytes;
        self
    }

    /// Skip damaged lines in the middle of the log when opening; see [`LogConfig::repair`].
    pub fn repair(mut self, repair: bool) -> Self {
        self.config.repair = repair;
        self
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Opens (or creates) the log; see [`LogStore::open`] for the errors.
    pub fn open(self) -> Result<LogStore> {
        LogStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = LogConfig::from_url("log://data/kv.log").unwrap();
        assert_eq!(c.path, PathBuf::from("data/kv.log"));
        let c = LogConfig::from_url(
            "log:///var/kv.log?default_collection=main&fsync=true&compact_ratio=0.25&compact_min_bytes=10&repair=true",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/kv.log"));
        assert_eq!(c.default_collection, "main");
        assert_eq!(c.compact_ratio, 0.25);
        assert_eq!(c.compact_min_bytes, 10);
        assert!(c.repair && c.fsync);
        for bad in [
            "memory://",
            "log://",
            "log://x?fsync=maybe",
            "log://x?compact_ratio=1.5",
            "log://x?compact_ratio=-1",
            "log://x?default_collection=",
            "log://x?unknown=1",
        ] {
            let e = LogConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for path in ["data/kv.log", "/var/kv.log", "/tmp/100%?.log"] {
            let mut c = LogConfig::new(path);
            c.fsync = false;
            let back = LogConfig::from_url(&c.location()).unwrap();
            assert_eq!(back.path, PathBuf::from(path));
            assert!(!back.fsync);
        }
    }
}
