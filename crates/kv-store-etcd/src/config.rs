//! Configuration: endpoints, credentials, key prefix, timeouts.

use std::fmt;
use std::time::Duration;

use kv_core::url::StoreUrl;
use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};

use crate::SCHEME;

/// How an [`EtcdStore`](crate::EtcdStore) connects and lays out its keys.
///
/// ```
/// use kv_store_etcd::EtcdConfig;
///
/// let cfg = EtcdConfig::from_url("etcd://root:s3cret@10.0.0.1:2379,10.0.0.2:2379?prefix=app").unwrap();
/// assert_eq!(cfg.endpoints.len(), 2);
/// assert!(!format!("{cfg:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// `host:port` of the cluster members (plain HTTP/2).
    pub endpoints: Vec<String>,
    /// User name for etcd authentication.
    pub user: Option<String>,
    /// Password (never shown by `Debug`, errors or `StoreInfo::location`).
    pub password: Option<String>,
    /// Every key of this store starts with `PREFIX/`. Must not contain `/`.
    pub prefix: String,
    /// Timeout of one operation.
    pub timeout: Duration,
    /// The largest value accepted (etcd's default request limit is 1.5 MiB).
    pub max_value_len: usize,
    /// The collection an empty collection name means.
    pub default_collection: String,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            user: None,
            password: None,
            prefix: "kv".to_owned(),
            timeout: Duration::from_secs(3),
            max_value_len: 1024 * 1024,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_value_len", &self.max_value_len)
            .field("default_collection", &self.default_collection)
            .finish()
    }
}

const PARAMS: &[&str] = &[
    "prefix",
    "timeout_ms",
    "max_value_len",
    "default_collection",
];

fn config_err(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

impl EtcdConfig {
    /// Parses `etcd://[USER:PASS@]HOST[:PORT][,HOST[:PORT]...][?prefix=P&timeout_ms=N&max_value_len=N&default_collection=C]`.
    pub fn from_url(url: &str) -> Result<Self> {
        let u = StoreUrl::parse(url)?;
        if u.scheme() != SCHEME {
            return Err(config_err(format!(
                "not a {SCHEME}:// URL: {}",
                u.redacted()
            )));
        }
        u.reject_unknown_params(PARAMS)?;
        let mut cfg = EtcdConfig {
            endpoints: Vec::new(),
            ..EtcdConfig::default()
        };
        let mut target = u.target().trim_end_matches('/');
        if let Some((auth, rest)) = target.rsplit_once('@') {
            target = rest;
            let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
            cfg.user = Some(user.to_owned());
            cfg.password = Some(pass.to_owned());
        }
        for s in target.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let ep = if s
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                s.to_owned()
            } else {
                format!("{s}:2379")
            };
            cfg.endpoints.push(ep);
        }
        if cfg.endpoints.is_empty() {
            return Err(config_err(format!("{}: no endpoint given", u.redacted())));
        }
        if let Some(p) = u.param("prefix") {
            cfg.prefix = p.to_owned();
        }
        if let Some(ms) = u.parse_param::<u64>("timeout_ms")? {
            cfg.timeout = Duration::from_millis(ms.max(1));
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

    /// Checks the prefix.
    pub fn validate(&self) -> Result<()> {
        if self.prefix.is_empty() || self.prefix.contains('/') {
            return Err(config_err(format!(
                "invalid etcd prefix {:?}: must be non-empty and contain no '/'",
                self.prefix
            )));
        }
        if self.default_collection.is_empty() {
            return Err(config_err(
                "default_collection must not be empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// The URL of this configuration with the password redacted.
    pub fn redacted_url(&self) -> String {
        let auth = self
            .user
            .as_ref()
            .map_or(String::new(), |u| format!("{u}:***@"));
        format!(
            "{SCHEME}://{auth}{}?prefix={}",
            self.endpoints.join(","),
            self.prefix
        )
    }
}
