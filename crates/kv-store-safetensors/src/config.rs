//! Configuration: builder and `safetensors://` URLs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use kv_engine::url::PathUrl;

use crate::SafetensorsStore;

/// The URL forms of this store (scheme, path).
const URLS: PathUrl = PathUrl::new(crate::SCHEME, "file path", "path.safetensors").or_memory();

/// The path that means "no file": `safetensors://:memory:`.
pub const MEMORY_PATH: &str = ":memory:";

/// Whether the store may change its file.
///
/// ```
/// use kv_store_safetensors::Mode;
///
/// assert_eq!("rw".parse::<Mode>().unwrap(), Mode::ReadWrite);
/// assert_eq!(Mode::default(), Mode::ReadOnly);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Lazy and read-only over an existing file: the header is read at open, a tensor's bytes
    /// on each read; every write is an [`ErrorKind::ReadOnly`] error. The default.
    #[default]
    ReadOnly,
    /// The whole file in memory, every operation allowed; the file (created if missing) is
    /// rewritten atomically on flush/close, or on every write (see [`Durability`]).
    ReadWrite,
}

impl Mode {
    /// The URL form: `ro` or `rw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "ro",
            Mode::ReadWrite => "rw",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ro" | "read_only" => Ok(Mode::ReadOnly),
            "rw" | "read_write" => Ok(Mode::ReadWrite),
            _ => Err("expected `ro` or `rw`".to_owned()),
        }
    }
}

/// When the mutable store writes its file.
///
/// ```
/// use kv_store_safetensors::Durability;
///
/// assert_eq!("immediate".parse::<Durability>().unwrap(), Durability::Immediate);
/// assert_eq!(Durability::default(), Durability::Flush);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// The file is rewritten (temp file + fsync + rename) by
    /// [`SafetensorsStore::flush`], by `close()` and, best effort, when the last handle is
    /// dropped. A crash loses the writes since the last flush; the file itself is always
    /// either the old or the new version. The default: a safetensors file is rewritten as a
    /// whole, so writing it per `put` costs O(store size).
    #[default]
    Flush,
    /// Every write rewrites the file (temp file + fsync + rename + directory fsync) before it
    /// returns: acknowledged writes survive a crash. Each write costs O(store size).
    Immediate,
}

impl Durability {
    /// The URL form: `flush` or `immediate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Flush => "flush",
            Durability::Immediate => "immediate",
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
            "flush" => Ok(Durability::Flush),
            "immediate" => Ok(Durability::Immediate),
            _ => Err("expected `flush` or `immediate`".to_owned()),
        }
    }
}

/// The settings of a [`SafetensorsStore`].
///
/// ```
/// use kv_store_safetensors::{Mode, SafetensorsConfig};
///
/// let cfg = SafetensorsConfig::from_url("safetensors://model.safetensors").unwrap();
/// assert_eq!(cfg.mode, Mode::ReadOnly);
/// assert_eq!(cfg.path.as_deref(), Some(std::path::Path::new("model.safetensors")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SafetensorsConfig {
    /// The file; `None` for a store in memory only (always [`Mode::ReadWrite`]).
    pub path: Option<PathBuf>,
    /// Read-only (default) or read-write.
    pub mode: Mode,
    /// When a read-write store writes its file.
    pub durability: Durability,
    /// The collection used for empty collection names, and the one whose keys are the bare
    /// tensor names of the file.
    pub default_collection: String,
}

impl SafetensorsConfig {
    /// Read-only access to the file at `path`.
    pub fn read_only(path: impl Into<PathBuf>) -> Self {
        SafetensorsConfig {
            path: Some(path.into()),
            mode: Mode::ReadOnly,
            durability: Durability::Flush,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Read-write access to the file at `path` (created if missing).
    pub fn read_write(path: impl Into<PathBuf>) -> Self {
        SafetensorsConfig {
            mode: Mode::ReadWrite,
            ..Self::read_only(path)
        }
    }

    /// A store in memory only.
    pub fn memory() -> Self {
        SafetensorsConfig {
            path: None,
            mode: Mode::ReadWrite,
            durability: Durability::Flush,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }

    /// Parses `safetensors://PATH` with the parameters `mode=ro|rw` (default `ro`),
    /// `durability=flush|immediate` (default `flush`, read-write only) and
    /// `default_collection=NAME`. `safetensors://:memory:` is a store in memory.
    ///
    /// The path is everything between `://` and `?`, percent-decoded:
    /// `safetensors://data/m.safetensors` is relative to the working directory,
    /// `safetensors:///abs/m.safetensors` absolute.
    ///
    /// ```
    /// use kv_store_safetensors::{Durability, Mode, SafetensorsConfig};
    ///
    /// let cfg = SafetensorsConfig::from_url("safetensors:///srv/kv.safetensors?mode=rw&durability=immediate")?;
    /// assert_eq!(cfg.mode, Mode::ReadWrite);
    /// assert_eq!(cfg.durability, Durability::Immediate);
    /// assert!(SafetensorsConfig::from_url("safetensors://:memory:")?.path.is_none());
    /// assert!(SafetensorsConfig::from_url("safetensors://").is_err());
    /// assert!(SafetensorsConfig::from_url("safetensors://m?mdoe=rw").is_err());
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = URLS.parse(url)?;
        url.reject_unknown_params(&["mode", "durability", "default_collection"])?;
        let memory = url.target() == MEMORY_PATH;
        let mut cfg = if memory {
            SafetensorsConfig::memory()
        } else {
            SafetensorsConfig::read_only(url.target())
        };
        if let Some(mode) = url.parse_param::<Mode>("mode")? {
            cfg.mode = mode;
        }
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
        if self.default_collection.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "default_collection must not be empty",
            ));
        }
        match (&self.path, self.mode) {
            (None, Mode::ReadOnly) => Err(Error::new(
                ErrorKind::Config,
                "a store in memory cannot be read-only (use mode=rw or a file path)",
            )),
            (Some(p), _) if p.as_os_str().is_empty() => {
                Err(Error::new(ErrorKind::Config, "the file path is empty"))
            }
            (_, Mode::ReadOnly) if self.durability != Durability::Flush => Err(Error::new(
                ErrorKind::Config,
                "durability applies to read-write stores only (add mode=rw)",
            )),
            _ => Ok(()),
        }
    }

    /// The store's location as a URL.
    pub(crate) fn location(&self) -> String {
        let mut s = format!("{}://", crate::SCHEME);
        match &self.path {
            None => s.push_str(MEMORY_PATH),
            Some(p) => {
                for c in p.to_string_lossy().chars() {
                    match c {
                        '%' => s.push_str("%25"),
                        '?' => s.push_str("%3F"),
                        c => s.push(c),
                    }
                }
            }
        }
        let mut params = Vec::new();
        if self.mode == Mode::ReadWrite && self.path.is_some() {
            params.push("mode=rw".to_owned());
        }
        if self.durability != Durability::Flush {
            params.push(format!("durability={}", self.durability));
        }
        if !params.is_empty() {
            s.push('?');
            s.push_str(&params.join("&"));
        }
        s
    }
}

/// Builds a [`SafetensorsStore`].
///
/// ```
/// use kv_store_safetensors::{Durability, SafetensorsStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = SafetensorsStore::builder(dir.path().join("kv.safetensors"))
///     .read_write()
///     .durability(Durability::Immediate)
///     .default_collection("main")
///     .open()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SafetensorsStoreBuilder {
    config: SafetensorsConfig,
}

impl SafetensorsStoreBuilder {
    /// A builder for read-only access to the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(SafetensorsConfig::read_only(path))
    }

    /// Starts from a configuration.
    pub fn from_config(config: SafetensorsConfig) -> Self {
        SafetensorsStoreBuilder { config }
    }

    /// Opens the file read-write (created if missing).
    pub fn read_write(mut self) -> Self {
        self.config.mode = Mode::ReadWrite;
        self
    }

    /// When a read-write store writes its file (default: [`Durability::Flush`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// Opens the store; see [`SafetensorsStore::open`] for the errors.
    pub fn open(self) -> Result<SafetensorsStore> {
        SafetensorsStore::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = SafetensorsConfig::from_url("safetensors://data/m.safetensors").unwrap();
        assert_eq!(c.path, Some(PathBuf::from("data/m.safetensors")));
        assert_eq!(c.mode, Mode::ReadOnly);
        let c = SafetensorsConfig::from_url(
            "safetensors:///var/m.safetensors?mode=rw&durability=immediate&default_collection=main",
        )
        .unwrap();
        assert_eq!(c.path, Some(PathBuf::from("/var/m.safetensors")));
        assert_eq!(c.mode, Mode::ReadWrite);
        assert_eq!(c.durability, Durability::Immediate);
        assert_eq!(c.default_collection, "main");
        let c = SafetensorsConfig::from_url("safetensors://:memory:").unwrap();
        assert_eq!(c.path, None);
        assert_eq!(c.mode, Mode::ReadWrite);
        for bad in [
            "redb://x",
            "safetensors://",
            "safetensors://x?mode=rx",
            "safetensors://x?durability=immediate",
            "safetensors://:memory:?mode=ro",
            "safetensors://x?default_collection=",
            "safetensors://x?unknown=1",
        ] {
            let e = SafetensorsConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
    }

    #[test]
    fn location_round_trips() {
        for cfg in [
            SafetensorsConfig::read_only("/tmp/100%?.safetensors"),
            SafetensorsConfig {
                durability: Durability::Immediate,
                ..SafetensorsConfig::read_write("rel/m.safetensors")
            },
            SafetensorsConfig::memory(),
        ] {
            let back = SafetensorsConfig::from_url(&cfg.location()).unwrap();
            assert_eq!(back, cfg);
        }
    }
}
