//! Configuration: servers, namespace prefix, timeouts, limits.

use std::fmt;
use std::time::Duration;

use kv_core::url::StoreUrl;
use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};

use crate::SCHEME;

/// Memcached's default maximum item size (`-I 1m`): key, value and item header together.
pub const DEFAULT_ITEM_SIZE: usize = 1024 * 1024;

/// Room kept below the item size for memcached's item header, the key and the kv envelope.
const ITEM_OVERHEAD: usize = 1024;

/// How a [`MemcachedStore`](crate::MemcachedStore) connects and lays out its keys.
///
/// ```
/// use kv_store_memcached::MemcachedConfig;
///
/// let cfg = MemcachedConfig::from_url("memcached://10.0.0.1:11211,10.0.0.2:11211?prefix=app&timeout_ms=500").unwrap();
/// assert_eq!(cfg.servers.len(), 2);
/// assert_eq!(cfg.prefix, "app");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemcachedConfig {
    /// `host:port` of every server; keys are spread over them by consistent hashing.
    pub servers: Vec<String>,
    /// Namespace of this store: the first part of every memcached key. Stores with different
    /// prefixes never see each other's entries. `[A-Za-z0-9_.-]`, 1 to 64 characters.
    pub prefix: String,
    /// Timeout of one operation (connecting included).
    pub timeout: Duration,
    /// Connections kept per server.
    pub pool_size: usize,
    /// The largest value accepted (bytes); larger ones fail with `ValueTooLarge` before
    /// anything is sent. Default: 1 MiB minus 1 KiB for memcached's item header, the key and
    /// the envelope. Raise it only for servers started with a larger `-I`.
    pub max_value_len: usize,
    /// The collection an empty collection name means.
    pub default_collection: String,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        MemcachedConfig {
            servers: vec!["127.0.0.1:11211".to_owned()],
            prefix: "kv".to_owned(),
            timeout: Duration::from_secs(3),
            pool_size: 4,
            max_value_len: DEFAULT_ITEM_SIZE - ITEM_OVERHEAD,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }
}

impl fmt::Debug for MemcachedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedConfig")
            .field("servers", &self.servers)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("max_value_len", &self.max_value_len)
            .field("default_collection", &self.default_collection)
            .finish()
    }
}

const PARAMS: &[&str] = &[
    "prefix",
    "timeout_ms",
    "pool_size",
    "max_value_len",
    "default_collection",
];

fn config_err(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

impl MemcachedConfig {
    /// Parses `memcached://HOST:PORT[,HOST:PORT...][?prefix=P&timeout_ms=N&pool_size=N&max_value_len=N&default_collection=C]`.
    pub fn from_url(url: &str) -> Result<Self> {
        let u = StoreUrl::parse(url)?;
        if u.scheme() != SCHEME {
            return Err(config_err(format!(
                "not a {SCHEME}:// URL: {}",
                u.redacted()
            )));
        }
        u.reject_unknown_params(PARAMS)?;
        let target = u.target().trim_end_matches('/');
        if target.contains('@') {
            return Err(config_err(format!(
                "{}: memcached's text protocol has no authentication; remove the user/password",
                u.redacted()
            )));
        }
        let mut cfg = MemcachedConfig {
            servers: Vec::new(),
            ..MemcachedConfig::default()
        };
        for s in target.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let server = if s
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                s.to_owned()
            } else {
                format!("{s}:11211")
            };
            if !cfg.servers.contains(&server) {
                cfg.servers.push(server);
            }
        }
        if cfg.servers.is_empty() {
            return Err(config_err(format!(
                "{}: no server given (memcached://HOST:PORT[,HOST:PORT...])",
                u.redacted()
            )));
        }
        if let Some(p) = u.param("prefix") {
            cfg.prefix = p.to_owned();
        }
        if let Some(ms) = u.parse_param::<u64>("timeout_ms")? {
            cfg.timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = u.parse_param::<usize>("pool_size")? {
            cfg.pool_size = n.clamp(1, 256);
        }
        if let Some(n) = u.parse_param::<usize>("max_value_len")? {
            cfg.max_value_len = n;
        }
        if let Some(c) = u.param("default_collection") {
            cfg.default_collection = c.to_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the prefix and the limits.
    pub fn validate(&self) -> Result<()> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > 64
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(config_err(format!(
                "invalid memcached prefix {p:?}: 1 to 64 characters of [A-Za-z0-9_.-]"
            )));
        }
        if self.servers.is_empty() {
            return Err(config_err("no memcached server configured".to_owned()));
        }
        if self.default_collection.is_empty() {
            return Err(config_err(
                "default_collection must not be empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// The URL of this configuration (no secrets: memcached has none).
    pub fn to_url(&self) -> String {
        format!(
            "{SCHEME}://{}?prefix={}",
            self.servers.join(","),
            self.prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_and_params() {
        let c = MemcachedConfig::from_url(
            "memcached://127.0.0.1:11311,127.0.0.1:11312,localhost?prefix=a-b&timeout_ms=10",
        )
        .unwrap();
        assert_eq!(
            c.servers,
            ["127.0.0.1:11311", "127.0.0.1:11312", "localhost:11211"]
        );
        assert_eq!(c.prefix, "a-b");
        assert_eq!(c.timeout, Duration::from_millis(10));
    }

    #[test]
    fn rejects_bad_urls() {
        for u in [
            "redis://x",
            "memcached://",
            "memcached://h:1?nope=1",
            "memcached://h:1?prefix=a:b",
            "memcached://u:secret@h:1",
        ] {
            let e = MemcachedConfig::from_url(u).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{u}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
