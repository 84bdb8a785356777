//! Configuration: parsed from a URL (`redis://`, `rediss://`, `redis+cluster://`, `valkey://`,
//! ...) or built in code. `Debug` never shows the password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kv_core::url::StoreUrl;
use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};

/// The default operation timeout (`timeout_ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default namespace (`namespace`): every key of the store starts with `{kv:`.
pub const DEFAULT_NAMESPACE: &str = "kv";

/// How the connection is secured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// Plain TCP (`redis://`, `valkey://`).
    #[default]
    None,
    /// TLS verified against the system's root certificates (`rediss://`).
    System,
    /// TLS verified against this CA certificate (PEM file; `rediss://...?ca=PATH`).
    Ca(PathBuf),
    /// TLS without verifying the server certificate (`rediss://...?insecure=true`). For tests only.
    Insecure,
}

/// How entries are laid out in Redis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// The kv layout (default): key `{NAMESPACE:COLLECTION}KEY`, value = the kv envelope
    /// (expires_at, created_at, version) followed by the raw value bytes.
    #[default]
    Native,
    /// py-key-value's layout: key `COLLECTION::KEY` (or `NAMESPACE:COLLECTION::KEY` when a
    /// namespace is given), value = its JSON document. Values must be JSON objects.
    PyKv,
}

/// Everything needed to connect and lay out the data.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The scheme the store reports as its kind (`redis` or `valkey`).
    pub kind: &'static str,
    /// `host:port` of the server, or of the seed nodes of a cluster.
    pub nodes: Vec<(String, u16)>,
    /// Redis Cluster (`redis+cluster://`): slots are discovered from the seed nodes.
    pub cluster: bool,
    /// TLS mode.
    pub tls: Tls,
    /// ACL user name.
    pub username: Option<String>,
    /// Password (never shown by `Debug`, errors or `location`).
    pub password: Option<String>,
    /// Database number (standalone only; URL path `/N`).
    pub db: i64,
    /// Namespace: the first part of every key, so stores sharing a server never see each
    /// other's data and `destroy` removes only this store's keys.
    pub namespace: String,
    /// Operation timeout (also the connect timeout).
    pub timeout: Duration,
    /// After each write, `WAIT` for this many replicas to acknowledge it (`wait=N`); a write
    /// that fewer replicas acknowledged within `wait_timeout` fails with a temporary error.
    pub wait_replicas: Option<u32>,
    /// How long `WAIT` may take (`wait_timeout_ms`, default = half the operation timeout).
    pub wait_timeout: Option<Duration>,
    /// Key and value layout.
    pub layout: Layout,
    /// The collection used for an empty collection name.
    pub default_collection: String,
    /// The URL the config came from, redacted (for `StoreInfo::location`).
    pub location: String,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("kind", &self.kind)
            .field("nodes", &self.nodes)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .field("layout", &self.layout)
            .field("default_collection", &self.default_collection)
            .field("location", &self.location)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            kind: crate::SCHEME,
            nodes: vec![("127.0.0.1".to_owned(), 6379)],
            cluster: false,
            tls: Tls::None,
            username: None,
            password: None,
            db: 0,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            wait_replicas: None,
            wait_timeout: None,
            layout: Layout::Native,
            default_collection: DEFAULT_COLLECTION.to_owned(),
            location: "redis://127.0.0.1:6379".to_owned(),
        }
    }
}

/// The URL parameters this store knows.
const PARAMS: &[&str] = &[
    "namespace",
    "prefix",
    "timeout_ms",
    "ca",
    "insecure",
    "wait",
    "wait_timeout_ms",
    "format",
    "default_collection",
    "db",
];

fn config_err(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

fn parse_bool(url: &StoreUrl, name: &str) -> Result<bool> {
    match url.param(name) {
        None => Ok(false),
        Some("" | "1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(config_err(format!(
            "invalid value {v:?} for URL parameter `{name}` of {}: expected true or false",
            url.redacted()
        ))),
    }
}

/// Splits `host:port`, with `[v6]:port` and a default port.
fn parse_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_owned(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((s.to_owned(), default_port)),
    }
}

impl RedisConfig {
    /// Parses a store URL.
    ///
    /// ```
    /// use kv_store_redis::{RedisConfig, Tls};
    /// let c = RedisConfig::from_url("rediss://app:hunter2@127.0.0.1:16380/2?ca=/tmp/ca.pem&namespace=app").unwrap();
    /// assert_eq!(c.nodes, vec![("127.0.0.1".to_owned(), 16380)]);
    /// assert_eq!(c.tls, Tls::Ca("/tmp/ca.pem".into()));
    /// assert_eq!(c.db, 2);
    /// assert_eq!(c.namespace, "app");
    /// assert!(!format!("{c:?}").contains("hunter2"));
    /// let c = RedisConfig::from_url("redis+cluster://127.0.0.1:17001,127.0.0.1:17002?wait=1").unwrap();
    /// assert!(c.cluster);
    /// assert_eq!(c.nodes.len(), 2);
    /// assert_eq!(c.wait_replicas, Some(1));
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = StoreUrl::parse(url)?;
        parsed.reject_unknown_params(PARAMS)?;
        let (kind, tls, cluster) = match parsed.scheme() {
            "redis" => (crate::SCHEME, false, false),
            "rediss" => (crate::SCHEME, true, false),
            "redis+cluster" => (crate::SCHEME, false, true),
            "rediss+cluster" => (crate::SCHEME, true, true),
            "valkey" => (crate::SCHEME_VALKEY, false, false),
            "valkeys" => (crate::SCHEME_VALKEY, true, false),
            "valkey+cluster" => (crate::SCHEME_VALKEY, false, true),
            "valkeys+cluster" => (crate::SCHEME_VALKEY, true, true),
            other => {
                return Err(config_err(format!(
                    "the redis store does not handle {other}:// URLs (use redis://, rediss://, \
                     redis+cluster://, rediss+cluster://, valkey://, valkeys://, valkey+cluster://)"
                )));
            }
        };
        let location = parsed.redacted();
        let target = parsed.target();
        // authority [/db]
        let (authority, path) = match target.find('/') {
            Some(i) => (&target[..i], &target[i + 1..]),
            None => (target, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    (!user.is_empty()).then(|| user.to_owned()),
                    Some(pass.to_owned()),
                ),
                None => ((!u.is_empty()).then(|| u.to_owned()), None),
            },
        };
        let mut nodes = Vec::new();
        if hosts.is_empty() {
            nodes.push(("127.0.0.1".to_owned(), 6379));
        } else {
            for h in hosts.split(',') {
                let node = parse_host_port(h, 6379)
                    .ok_or_else(|| config_err(format!("invalid host:port {h:?} in {location}")))?;
                nodes.push(node);
            }
        }
        if !cluster && nodes.len() > 1 {
            return Err(config_err(format!(
                "{location}: several hosts need a cluster URL ({}+cluster://host:port,host:port)",
                parsed.scheme()
            )));
        }
        let mut db: i64 = 0;
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            db = path.parse().map_err(|_| {
                config_err(format!(
                    "{location}: the URL path must be a database number, not {path:?}"
                ))
            })?;
        }
        if let Some(d) = parsed.parse_param::<i64>("db")? {
            db = d;
        }
        if cluster && db != 0 {
            return Err(config_err(format!(
                "{location}: Redis Cluster has only database 0"
            )));
        }
        let tls = if !tls {
            if parsed.param("ca").is_some() || parsed.param("insecure").is_some() {
                return Err(config_err(format!(
                    "{location}: `ca` and `insecure` need a TLS scheme (rediss:// or valkeys://)"
                )));
            }
            Tls::None
        } else if parse_bool(&parsed, "insecure")? {
            Tls::Insecure
        } else if let Some(ca) = parsed.param("ca") {
            Tls::Ca(PathBuf::from(ca))
        } else {
            Tls::System
        };
        let layout = match parsed.param("format") {
            None | Some("native" | "kv") => Layout::Native,
            Some("pykv" | "py-key-value") => Layout::PyKv,
            Some(other) => {
                return Err(config_err(format!(
                    "{location}: unknown format {other:?} (native or pykv)"
                )));
            }
        };
        // py-key-value keys have no namespace unless one is asked for.
        let default_ns = match layout {
            Layout::Native => DEFAULT_NAMESPACE,
            Layout::PyKv => "",
        };
        let namespace = parsed
            .param("namespace")
            .or(parsed.param("prefix"))
            .unwrap_or(default_ns)
            .to_owned();
        let timeout = match parsed.parse_param::<u64>("timeout_ms")? {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(config_err(format!("{location}: timeout_ms must be > 0"))),
            Some(ms) => Duration::from_millis(ms),
        };
        let wait_replicas = match parsed.parse_param::<u32>("wait")? {
            None | Some(0) => None,
            Some(n) => Some(n),
        };
        let wait_timeout = parsed
            .parse_param::<u64>("wait_timeout_ms")?
            .map(Duration::from_millis);
        let default_collection = match parsed.param("default_collection") {
            None => DEFAULT_COLLECTION.to_owned(),
            Some("") => {
                return Err(config_err(format!(
                    "{location}: default_collection must not be empty"
                )));
            }
            Some(c) => c.to_owned(),
        };
        let cfg = RedisConfig {
            kind,
            nodes,
            cluster,
            tls,
            username,
            password,
            db,
            namespace,
            timeout,
            wait_replicas,
            wait_timeout,
            layout,
            default_collection,
            location,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the combination of settings.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.layout == Layout::Native && self.namespace.is_empty() {
            return Err(config_err(
                "the native layout needs a non-empty namespace (it keeps `destroy` to this \
                 store's keys)"
                    .to_owned(),
            ));
        }
        if self.nodes.is_empty() {
            return Err(config_err("no server address".to_owned()));
        }
        Ok(())
    }

    /// The effective `WAIT` timeout.
    pub(crate) fn effective_wait_timeout(&self) -> Duration {
        self.wait_timeout.unwrap_or(self.timeout / 2)
    }

    /// Removes the password from a message (errors of the client library may quote it).
    pub(crate) fn scrub(&self, msg: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => msg.replace(p.as_str(), "***"),
            _ => msg.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let c = RedisConfig::from_url("redis://127.0.0.1:16379").unwrap();
        assert_eq!(c.nodes, vec![("127.0.0.1".to_owned(), 16379)]);
        assert_eq!(c.tls, Tls::None);
        assert_eq!(c.kind, "redis");
        let c = RedisConfig::from_url("valkey://localhost").unwrap();
        assert_eq!(c.kind, "valkey");
        assert_eq!(c.nodes, vec![("localhost".to_owned(), 6379)]);
        let c = RedisConfig::from_url("rediss://h:1?insecure=true").unwrap();
        assert_eq!(c.tls, Tls::Insecure);
        let c = RedisConfig::from_url("redis://[::1]:7000/3").unwrap();
        assert_eq!(c.nodes, vec![("::1".to_owned(), 7000)]);
        assert_eq!(c.db, 3);
        let c = RedisConfig::from_url("redis://u:p%40ss@h:1?format=pykv&namespace=").unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.layout, Layout::PyKv);
        assert_eq!(c.namespace, "");
        let c = RedisConfig::from_url("redis://h?format=pykv").unwrap();
        assert_eq!(c.namespace, "");
        let c = RedisConfig::from_url("redis://h").unwrap();
        assert_eq!(c.namespace, "kv");
    }

    #[test]
    fn errors() {
        for bad in [
            "redis://h:1?nope=1",
            "redis://a:1,b:2",
            "redis://h:x",
            "redis://h:1/abc",
            "redis://h:1?ca=/x",
            "redis+cluster://h:1/2",
            "redis://h?timeout_ms=0",
            "redis://h?namespace=",
            "memcached://h",
            "redis://h?format=xml",
        ] {
            let e = RedisConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
        let e = RedisConfig::from_url("redis://u:hunter2@h:1?nope=1").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
