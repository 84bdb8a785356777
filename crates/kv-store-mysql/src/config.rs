//! The store's settings, from a `mysql://` (or `mariadb://`) URL or a builder.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use kv_core::url::StoreUrl;
use kv_core::{DEFAULT_COLLECTION, Error, ErrorKind, Result};
use sqlx::mysql::MySqlConnectOptions;

use crate::format::{DEFAULT_TABLE, check_table_name};

/// The default operation timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default number of pooled connections.
pub const DEFAULT_POOL_SIZE: u32 = 10;

const OWN_PARAMS: &[&str] = &["table", "pool_size", "timeout_ms", "default_collection"];

/// Parameters passed to sqlx (TLS and session settings).
const SQLX_PARAMS: &[&str] = &[
    "ssl-mode",
    "sslmode",
    "ssl-ca",
    "sslca",
    "ssl-cert",
    "sslcert",
    "ssl-key",
    "sslkey",
    "charset",
    "collation",
    "statement-cache-capacity",
    "socket",
    "timezone",
];

/// Everything the store needs to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct MysqlConfig {
    pub(crate) options: MySqlConnectOptions,
    /// The table of this store.
    pub table: String,
    /// The most connections the pool opens.
    pub pool_size: u32,
    /// The longest any operation may take, waiting for a connection included.
    pub timeout: Duration,
    /// The collection used for an empty collection name.
    pub default_collection: String,
    pub(crate) location: String,
}

impl fmt::Debug for MysqlConfig {
    // sqlx's options print the password: never show them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("location", &self.location)
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("default_collection", &self.default_collection)
            .finish()
    }
}

impl MysqlConfig {
    /// Parses `mysql://user:password@host:port/database?table=kv_store&pool_size=10&timeout_ms=5000`
    /// (also `mariadb://`). TLS parameters (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`) and
    /// `charset`, `collation`, `socket`, `timezone`, `statement-cache-capacity` are passed to
    /// sqlx; other unknown parameters are an error. Errors never contain the password.
    ///
    /// ```
    /// use kv_store_mysql::MysqlConfig;
    ///
    /// let c = MysqlConfig::from_url("mariadb://app:s3cret@db:3306/app?table=sessions&ssl-mode=required")?;
    /// assert_eq!(c.table, "sessions");
    /// assert!(!format!("{c:?}").contains("s3cret"));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = StoreUrl::parse(url)?;
        if !matches!(parsed.scheme(), "mysql" | "mariadb") {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "not a mysql URL: {} (expected mysql:// or mariadb://)",
                    parsed.redacted()
                ),
            ));
        }
        let known: Vec<&str> = OWN_PARAMS.iter().chain(SQLX_PARAMS).copied().collect();
        parsed.reject_unknown_params(&known)?;
        let (head, query) = match url.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (url, None),
        };
        let rest = head.split_once("://").map_or("", |(_, r)| r);
        let mut sqlx_url = format!("mysql://{rest}");
        let passthrough: Vec<&str> = query
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .filter(|p| !OWN_PARAMS.contains(&p.split_once('=').map_or(*p, |(k, _)| k)))
                    .collect()
            })
            .unwrap_or_default();
        if !passthrough.is_empty() {
            sqlx_url.push('?');
            sqlx_url.push_str(&passthrough.join("&"));
        }
        let options = MySqlConnectOptions::from_str(&sqlx_url).map_err(|e| {
            let mut msg = e.to_string();
            if let Some(pw) = password_of(rest) {
                msg = msg.replace(pw, "***");
            }
            Error::new(
                ErrorKind::Config,
                format!("invalid mysql URL {}: {msg}", parsed.redacted()),
            )
        })?;
        let mut config = MysqlConfig {
            options,
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_TIMEOUT,
            default_collection: DEFAULT_COLLECTION.to_owned(),
            location: parsed.redacted(),
        };
        if let Some(t) = parsed.param("table") {
            config.table = t.to_owned();
        }
        if let Some(n) = parsed.parse_param::<u32>("pool_size")? {
            config.pool_size = n;
        }
        if let Some(ms) = parsed.parse_param::<u64>("timeout_ms")? {
            config.timeout = Duration::from_millis(ms);
        }
        if let Some(c) = parsed.param("default_collection") {
            config.default_collection = c.to_owned();
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets the table.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n;
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

    /// Where the data lives, with secrets redacted.
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

/// The raw (still percent-encoded) password of `user:password@host...`, if any.
fn password_of(rest: &str) -> Option<&str> {
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, pw) = userinfo.split_once(':')?;
    (!pw.is_empty()).then_some(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_params() {
        let c = MysqlConfig::from_url(
            "mariadb://u:hunter2@127.0.0.1:3307/db?table=t1&pool_size=3&timeout_ms=250&ssl-mode=disabled",
        )
        .unwrap();
        assert_eq!(c.table, "t1");
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert!(!format!("{c:?} {}", c.location()).contains("hunter2"));
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "mysql://u:hunter2@h/db?table=1bad",
            "mysql://u:hunter2@h/db?nonsense=1",
            "mysql://u:hunter2@h/db?pool_size=x",
            "mysql://u:hunter2@h/db?ssl-mode=maybe",
            "mysql://u:hunter2@h:notaport/db",
            "postgres://u:hunter2@h/db",
        ] {
            let e = MysqlConfig::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{url}: {shown}");
        }
    }
}
