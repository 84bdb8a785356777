//! The store's settings, from a `postgres://` URL or a builder.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use kv_core::url::{StoreUrl, redact};
use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};

use crate::format::{DEFAULT_TABLE, check_table_name};

/// The default operation timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default number of pooled connections.
pub const DEFAULT_POOL_SIZE: usize = 10;

/// The default number of connections operations share (see
/// [`PostgresConfig::shared_connections`]).
pub const DEFAULT_SHARED_CONNECTIONS: usize = 2;

/// The URL parameters this crate reads itself; every other parameter is passed to
/// tokio-postgres (`application_name`, `connect_timeout`, `options`, `keepalives`, ...).
const OWN_PARAMS: &[&str] = &[
    "table",
    "pool_size",
    "shared_connections",
    "timeout_ms",
    "default_collection",
    "sslmode",
    "sslrootcert",
];

/// How the connection uses TLS (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, without verifying the certificate (libpq's default).
    #[default]
    Prefer,
    /// TLS or fail; the certificate is verified against `sslrootcert` when one is given,
    /// otherwise not verified (as libpq does).
    Require,
    /// TLS, certificate chain verified against `sslrootcert` (or the Mozilla roots); the host
    /// name is not checked.
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" | "allow" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "unknown sslmode {other:?} (disable, allow, prefer, require, verify-ca, verify-full)"
            )),
        }
    }
}

/// Everything the store needs to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct PostgresConfig {
    pub(crate) pg: tokio_postgres::Config,
    /// The table of this store.
    pub table: String,
    /// The most connections the pool opens.
    pub pool_size: usize,
    /// How many of the pool's connections point operations and batches share (`0`: every
    /// operation takes a connection of its own for its duration; default
    /// [`DEFAULT_SHARED_CONNECTIONS`]). tokio-postgres pipelines the statements of concurrent
    /// operations on one connection: the server reads and answers them in batches, so a few
    /// shared connections carry more operations per second, with less CPU on both sides,
    /// than one connection per waiting task (BENCHMARKS.md: about twice the gets per second
    /// at 64 tasks). Scans, clear, cull and listing collections still take a connection of
    /// their own, so a long statement never holds up the short ones queued behind it. At
    /// most `pool_size - 1` are shared: one connection stays free for the schema work that
    /// needs a transaction of its own. An operation takes the shared connection with the
    /// fewest statements in flight (the first when several are idle), so a sequential caller
    /// uses one and more are opened only as concurrency needs them. Raise it for a server with
    /// many cores under many concurrent tasks: each connection is served by one server process.
    pub shared_connections: usize,
    /// The longest any operation may take (waiting for a connection included); also the
    /// connect timeout.
    pub timeout: Duration,
    /// The collection used for an empty collection name.
    pub default_collection: String,
    /// TLS mode.
    pub ssl_mode: SslMode,
    /// A PEM file of CA certificates to verify the server with.
    pub ssl_root_cert: Option<PathBuf>,
    /// The URL with secrets redacted.
    pub(crate) location: String,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("location", &self.location)
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("shared_connections", &self.shared_connections)
            .field("timeout", &self.timeout)
            .field("default_collection", &self.default_collection)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .finish()
    }
}

impl PostgresConfig {
    /// Parses a `postgres://` (or `postgresql://`) URL:
    /// `postgres://user:password@host:port/database?table=kv_store&pool_size=10&timeout_ms=5000`.
    ///
    /// Errors never contain the password.
    ///
    /// ```
    /// use kv_store_postgres::PostgresConfig;
    ///
    /// let c = PostgresConfig::from_url("postgres://app:s3cret@db:5432/app?table=sessions&sslmode=require")?;
    /// assert_eq!(c.table, "sessions");
    /// assert!(!format!("{c:?}").contains("s3cret"));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = StoreUrl::parse(url)?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "not a postgres URL: {} (expected postgres:// or postgresql://)",
                    parsed.redacted()
                ),
            ));
        }
        // Our own parameters are removed before tokio-postgres sees the URL.
        let (head, query) = match url.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (url, None),
        };
        let passthrough: Vec<&str> = query
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .filter(|p| !OWN_PARAMS.contains(&p.split_once('=').map_or(*p, |(k, _)| k)))
                    .collect()
            })
            .unwrap_or_default();
        let mut pg_url = head.to_owned();
        if !passthrough.is_empty() {
            pg_url.push('?');
            pg_url.push_str(&passthrough.join("&"));
        }
        let pg = tokio_postgres::Config::from_str(&pg_url).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("invalid postgres URL {}: {e}", parsed.redacted()),
            )
        })?;
        let mut config = PostgresConfig::from_pg(pg);
        config.location = parsed.redacted();
        if let Some(t) = parsed.param("table") {
            config.table = t.to_owned();
        }
        if let Some(n) = parsed.parse_param::<usize>("pool_size")? {
            config.pool_size = n;
        }
        if let Some(n) = parsed.parse_param::<usize>("shared_connections")? {
            config.shared_connections = n;
        }
        if let Some(ms) = parsed.parse_param::<u64>("timeout_ms")? {
            config.timeout = Duration::from_millis(ms);
        }
        if let Some(c) = parsed.param("default_collection") {
            config.default_collection = c.to_owned();
        }
        if let Some(m) = parsed.parse_param::<SslMode>("sslmode")? {
            config.ssl_mode = m;
        }
        if let Some(p) = parsed.param("sslrootcert") {
            config.ssl_root_cert = Some(PathBuf::from(p));
        }
        config.validate()?;
        Ok(config)
    }

    /// Settings from a tokio-postgres configuration, with the defaults of this crate.
    pub fn from_pg(pg: tokio_postgres::Config) -> Self {
        let location = describe(&pg);
        PostgresConfig {
            pg,
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            shared_connections: DEFAULT_SHARED_CONNECTIONS,
            timeout: DEFAULT_TIMEOUT,
            default_collection: DEFAULT_COLLECTION.to_owned(),
            ssl_mode: SslMode::default(),
            ssl_root_cert: None,
            location,
        }
    }

    /// Sets the table.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets how many connections operations share, pipelining their statements (`0`: one
    /// connection per operation). See [`PostgresConfig::shared_connections`].
    ///
    /// ```
    /// use kv_store_postgres::PostgresConfig;
    ///
    /// let c = PostgresConfig::from_url("postgres://app@db/app?pool_size=8")?.shared_connections(4);
    /// assert_eq!(c.shared_connections, 4);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn shared_connections(mut self, n: usize) -> Self {
        self.shared_connections = n;
        self
    }

    /// Sets the operation timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets the default collection.
    pub fn default_collection(mut self, c: impl Into<String>) -> Self {
        self.default_collection = c.into();
        self
    }

    /// Sets the TLS mode.
    pub fn ssl_mode(mut self, m: SslMode) -> Self {
        self.ssl_mode = m;
        self
    }

    /// Sets the CA file.
    pub fn ssl_root_cert(mut self, p: impl Into<PathBuf>) -> Self {
        self.ssl_root_cert = Some(p.into());
        self
    }

    /// Where the data lives, with secrets redacted (the store's
    /// [`StoreInfo::location`](kv_core::StoreInfo::location)).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        check_table_name(&self.table)?;
        if self.pool_size == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "pool_size must be at least 1",
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "timeout_ms must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// A redacted description of a tokio-postgres configuration (no password).
fn describe(pg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .zip(pg.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            Host::Tcp(h) => format!("{h}:{p}"),
            Host::Unix(path) => format!("{}", path.display()),
        })
        .collect();
    let user = pg.get_user().unwrap_or("");
    let at = if user.is_empty() {
        String::new()
    } else if pg.get_password().is_some() {
        format!("{user}:***@")
    } else {
        format!("{user}@")
    };
    redact(&format!(
        "postgres://{at}{}/{}",
        hosts.join(","),
        pg.get_dbname().unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_own_and_passthrough_params() {
        let c = PostgresConfig::from_url(
            "postgresql://u:hunter2@127.0.0.1:5433/db?table=t1&pool_size=3&timeout_ms=250&application_name=x&sslmode=disable",
        )
        .unwrap();
        assert_eq!(c.table, "t1");
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.ssl_mode, SslMode::Disable);
        assert_eq!(c.pg.get_application_name(), Some("x"));
        assert_eq!(c.pg.get_dbname(), Some("db"));
        let shown = format!("{c:?} {}", c.location());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "postgres://u:hunter2@h/db?table=1bad",
            "postgres://u:hunter2@h/db?nonsense=1",
            "postgres://u:hunter2@h/db?pool_size=x",
            "postgres://u:hunter2@h/db?sslmode=maybe",
            "postgres://u:hunter2@h:notaport/db",
            "postgres://u:hunter2@h/db?password=hunter2&table=%%",
            "mysql://u:hunter2@h/db",
        ] {
            let e = PostgresConfig::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{url}: {shown}");
        }
    }
}
