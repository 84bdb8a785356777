//! Configuration: servers, credentials, namespace, timeouts.

use std::fmt;
use std::time::Duration;

use kv_core::url::StoreUrl;
use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};

use crate::SCHEME;

/// How a [`NatsStore`](crate::NatsStore) connects and names its buckets.
///
/// ```
/// use kv_store_nats::NatsConfig;
///
/// let cfg = NatsConfig::from_url("nats://app:s3cret@127.0.0.1:4222?namespace=app").unwrap();
/// assert_eq!(cfg.namespace, "app");
/// assert!(!format!("{cfg:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsConfig {
    /// `host:port` of the servers (the client picks one and fails over).
    pub servers: Vec<String>,
    /// User name, if the server wants user/password authentication.
    pub user: Option<String>,
    /// Password (never shown by `Debug`, errors or `StoreInfo::location`).
    pub password: Option<String>,
    /// Token authentication (`nats://TOKEN@host`), never shown either.
    pub token: Option<String>,
    /// Namespace: every bucket of this store is named `NAMESPACE_...`.
    /// `[A-Za-z0-9-]`, 1 to 32 characters.
    pub namespace: String,
    /// Timeout of one operation.
    pub timeout: Duration,
    /// Replicas of each bucket's stream (1 on a single server).
    pub replicas: usize,
    /// The collection an empty collection name means.
    pub default_collection: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            servers: vec!["127.0.0.1:4222".to_owned()],
            user: None,
            password: None,
            token: None,
            namespace: "kv".to_owned(),
            timeout: Duration::from_secs(3),
            replicas: 1,
            default_collection: DEFAULT_COLLECTION.to_owned(),
        }
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("replicas", &self.replicas)
            .field("default_collection", &self.default_collection)
            .finish()
    }
}

const PARAMS: &[&str] = &[
    "namespace",
    "prefix",
    "timeout_ms",
    "replicas",
    "default_collection",
];

fn config_err(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

impl NatsConfig {
    /// Parses `nats://[USER:PASS@|TOKEN@]HOST[:PORT][,HOST[:PORT]...][?namespace=N&timeout_ms=N&replicas=N&default_collection=C]`
    /// (`prefix` is an alias of `namespace`).
    pub fn from_url(url: &str) -> Result<Self> {
        let u = StoreUrl::parse(url)?;
        if u.scheme() != SCHEME {
            return Err(config_err(format!(
                "not a {SCHEME}:// URL: {}",
                u.redacted()
            )));
        }
        u.reject_unknown_params(PARAMS)?;
        let mut cfg = NatsConfig {
            servers: Vec::new(),
            ..NatsConfig::default()
        };
        let mut target = u.target().trim_end_matches('/');
        if let Some((auth, rest)) = target.rsplit_once('@') {
            target = rest;
            match auth.split_once(':') {
                Some((user, pass)) => {
                    cfg.user = Some(user.to_owned());
                    cfg.password = Some(pass.to_owned());
                }
                None => cfg.token = Some(auth.to_owned()),
            }
        }
        for s in target.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let server = if s
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                s.to_owned()
            } else {
                format!("{s}:4222")
            };
            cfg.servers.push(server);
        }
        if cfg.servers.is_empty() {
            return Err(config_err(format!("{}: no server given", u.redacted())));
        }
        if let Some(p) = u.param("namespace").or(u.param("prefix")) {
            cfg.namespace = p.to_owned();
        }
        if let Some(ms) = u.parse_param::<u64>("timeout_ms")? {
            cfg.timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = u.parse_param::<usize>("replicas")? {
            cfg.replicas = n.clamp(1, 5);
        }
        if let Some(c) = u.param("default_collection") {
            cfg.default_collection = c.to_owned();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the namespace.
    pub fn validate(&self) -> Result<()> {
        let n = &self.namespace;
        if n.is_empty()
            || n.len() > 32
            || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(config_err(format!(
                "invalid NATS namespace {n:?}: 1 to 32 characters of [A-Za-z0-9-]"
            )));
        }
        if self.default_collection.is_empty() {
            return Err(config_err(
                "default_collection must not be empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// The URL of this configuration with every secret redacted.
    pub fn redacted_url(&self) -> String {
        let auth = match (&self.user, &self.token) {
            (Some(u), _) => format!("{u}:***@"),
            (None, Some(_)) => "***@".to_owned(),
            _ => String::new(),
        };
        format!(
            "{SCHEME}://{auth}{}?namespace={}",
            self.servers.join(","),
            self.namespace
        )
    }
}
