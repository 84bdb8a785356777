//! The URL part every file-backed store shares: check the scheme and that a path is given.
//!
//! kv's file URLs put the path where a host would be: `SCHEME://relative/path` is relative to
//! the working directory, `SCHEME:///absolute/path` is absolute (see
//! `kv_core::url::StoreUrl::target`). [`PathUrl`] parses such a URL and fails with a
//! [`ErrorKind::Config`] error that shows both forms when the scheme is wrong or the path is
//! missing; the store then reads its own query parameters from the returned `StoreUrl`.

use kv_core::url::StoreUrl;
use kv_core::{Error, ErrorKind, Result};

/// How a store's `SCHEME://PATH` URLs look, for parsing them with [`PathUrl::parse`].
///
/// # Example
///
/// ```
/// use kv_engine::url::PathUrl;
///
/// const URLS: PathUrl = PathUrl::new("log", "file path", "path.log");
///
/// let url = URLS.parse("log://data/kv.log?fsync=false").unwrap();
/// assert_eq!(url.target(), "data/kv.log");
/// assert_eq!(URLS.parse("log:///var/kv.log").unwrap().target(), "/var/kv.log");
///
/// let e = URLS.parse("log://").unwrap_err();
/// assert_eq!(e.kind(), kv_core::ErrorKind::Config);
/// assert!(e.to_string().contains(
///     "has no file path: use log://relative/path.log or log:///absolute/path.log"
/// ));
/// assert!(URLS.parse("redb://x").unwrap_err().to_string().contains("expected a log:// URL"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PathUrl {
    scheme: &'static str,
    alias: Option<&'static str>,
    what: &'static str,
    example: &'static str,
    memory: bool,
}

impl PathUrl {
    /// URLs of `scheme` whose path is a `what` ("file path", "directory", ...), shown in
    /// messages as `scheme://relative/EXAMPLE or scheme:///absolute/EXAMPLE`.
    ///
    /// # Example
    ///
    /// ```
    /// let urls = kv_engine::url::PathUrl::new("lmdb", "path", "dir");
    /// assert!(urls.parse("lmdb://data/env").is_ok());
    /// ```
    pub const fn new(scheme: &'static str, what: &'static str, example: &'static str) -> Self {
        PathUrl {
            scheme,
            alias: None,
            what,
            example,
            memory: false,
        }
    }

    /// Also accepts `alias://` URLs.
    ///
    /// # Example
    ///
    /// ```
    /// use kv_engine::url::PathUrl;
    ///
    /// let urls = PathUrl::new("redb", "file path", "path.redb").alias("disk");
    /// assert_eq!(urls.parse("disk://kv.redb").unwrap().scheme(), "disk");
    /// let e = urls.parse("x://kv.redb").unwrap_err();
    /// assert!(e.to_string().contains("expected a redb:// or disk:// URL, got x://"));
    /// ```
    pub const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }

    /// Mentions `scheme://:memory:` in the message for a missing path (the store itself
    /// recognises the `:memory:` target).
    ///
    /// # Example
    ///
    /// ```
    /// use kv_engine::url::PathUrl;
    ///
    /// let urls = PathUrl::new("sqlite", "file path", "path.db").or_memory();
    /// assert_eq!(urls.parse("sqlite://:memory:").unwrap().target(), ":memory:");
    /// assert!(urls.parse("sqlite://").unwrap_err().to_string().contains(
    ///     "use sqlite://relative/path.db, sqlite:///absolute/path.db or sqlite://:memory:"
    /// ));
    /// ```
    pub const fn or_memory(mut self) -> Self {
        self.memory = true;
        self
    }

    /// Parses `url`, checks its scheme and that it has a path.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a malformed URL, another scheme, or a missing path.
    ///
    /// # Example
    ///
    /// ```
    /// let urls = kv_engine::url::PathUrl::new("jsonfile", "file path", "kv.json");
    /// let url = urls.parse("jsonfile://kv.json?durability=none").unwrap();
    /// assert_eq!(url.param("durability"), Some("none"));
    /// ```
    pub fn parse(&self, url: &str) -> Result<StoreUrl> {
        let url = StoreUrl::parse(url)?;
        if url.scheme() != self.scheme && Some(url.scheme()) != self.alias {
            let expected = match self.alias {
                Some(alias) => format!("{}:// or {alias}://", self.scheme),
                None => format!("{}://", self.scheme),
            };
            return Err(Error::new(
                ErrorKind::Config,
                format!("expected a {expected} URL, got {}://", url.scheme()),
            ));
        }
        if url.target().is_empty() {
            let (s, ex) = (self.scheme, self.example);
            let forms = if self.memory {
                format!("{s}://relative/{ex}, {s}:///absolute/{ex} or {s}://:memory:")
            } else {
                format!("{s}://relative/{ex} or {s}:///absolute/{ex}")
            };
            return Err(Error::new(
                ErrorKind::Config,
                format!("{} has no {}: use {forms}", url.redacted(), self.what),
            ));
        }
        Ok(url)
    }
}
