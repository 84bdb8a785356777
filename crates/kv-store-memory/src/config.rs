//! Configuration: builder and `memory://` URLs.

use kv_core::url::StoreUrl;
use kv_core::{Bytes, DEFAULT_COLLECTION, Error, ErrorKind, Result};

use crate::MemoryStore;

/// The settings of a [`MemoryStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Keep at most this many entries per collection, evicting the least recently used.
    pub max_entries_per_collection: Option<usize>,
    /// The collection used for empty collection names.
    pub default_collection: String,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_entries_per_collection: None,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }
}

impl MemoryConfig {
    /// Parses `memory://?max_entries=N&default_collection=NAME`.
    ///
    /// ```
    /// use kv_store_memory::MemoryConfig;
    ///
    /// let cfg = MemoryConfig::from_url("memory://?max_entries=500").unwrap();
    /// assert_eq!(cfg.max_entries_per_collection, Some(500));
    /// assert!(MemoryConfig::from_url("memory://?max_entries=0").is_err());
    /// assert!(MemoryConfig::from_url("memory://?max_entrys=5").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = StoreUrl::parse(url)?;
        if url.scheme() != crate::SCHEME {
            return Err(Error::new(
                ErrorKind::Config,
                format!("expected a memory:// URL, got {}://", url.scheme()),
            ));
        }
        if !url.target().is_empty() && url.target() != "/" {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "memory:// takes no host or path (got {:?}); use memory:// or memory://?max_entries=N",
                    url.target()
                ),
            ));
        }
        url.reject_unknown_params(&["max_entries", "default_collection"])?;
        let mut cfg = MemoryConfig::default();
        if let Some(n) = url.parse_param::<usize>("max_entries")? {
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::Config,
                    "max_entries must be at least 1",
                ));
            }
            cfg.max_entries_per_collection = Some(n);
        }
        if let Some(name) = url.param("default_collection") {
            if name.is_empty() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "default_collection must not be empty",
                ));
            }
            cfg.default_collection = name.to_owned();
        }
        Ok(cfg)
    }
}

/// Builds a [`MemoryStore`].
///
/// ```
/// use kv_store_memory::MemoryStore;
///
/// let store = MemoryStore::builder()
///     .max_entries_per_collection(100)
///     .default_collection("main")
///     .seed("users", "alice", r#"{"age":30}"#)
///     .build();
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct MemoryStoreBuilder {
    config: MemoryConfig,
    seed: Vec<(String, String, Bytes)>,
}

impl MemoryStoreBuilder {
    /// Starts from a configuration.
    pub fn from_config(config: MemoryConfig) -> Self {
        MemoryStoreBuilder {
            config,
            seed: Vec::new(),
        }
    }

    /// Keeps at most `n` entries per collection (LRU eviction). `0` means unbounded.
    pub fn max_entries_per_collection(mut self, n: usize) -> Self {
        self.config.max_entries_per_collection = (n > 0).then_some(n);
        self
    }

    /// The collection used for empty collection names.
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.config.default_collection = name.into();
        self
    }

    /// An entry present from the start, without expiry (py-key-value's `seed`).
    pub fn seed(
        mut self,
        collection: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Self {
        self.seed
            .push((collection.into(), key.into(), value.into()));
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore::from_parts(self.config, self.seed)
    }
}
