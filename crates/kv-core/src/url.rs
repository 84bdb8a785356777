//! Store URLs: one parser for every store (`scheme://rest?param=value`) and one redaction
//! rule, so no store leaks a password into `Debug`, errors, logs or `kv info`.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind, Result};

/// Query parameter names whose values are secrets (matched case-insensitively, also as a
/// suffix such as `aws_secret_access_key`).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "credentials",
    "sig",
    "signature",
];

/// A parsed store URL.
///
/// The part after `scheme://` and before `?` is kept verbatim (percent-decoded) as
/// [`StoreUrl::target`]: a path for file stores (`redb://data/kv.redb` is relative,
/// `redb:///var/kv.redb` absolute), `host:port` lists for servers.
///
/// ```
/// use kv_core::url::StoreUrl;
///
/// let url: StoreUrl = "redb://data/kv.redb?durability=none".parse().unwrap();
/// assert_eq!(url.scheme(), "redb");
/// assert_eq!(url.target(), "data/kv.redb");
/// assert_eq!(url.param("durability"), Some("none"));
///
/// let url: StoreUrl = "redis://app:hunter2@localhost:6379/0?token=abc".parse().unwrap();
/// assert_eq!(url.redacted(), "redis://app:***@localhost:6379/0?token=***");
/// assert!(!format!("{url:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl {
    raw: String,
    scheme: String,
    target: String,
    params: Vec<(String, String)>,
}

impl StoreUrl {
    /// Parses `scheme://target?query`. A bare path (no `://`) is rejected: the caller decides
    /// what a default scheme would be.
    pub fn parse(s: &str) -> Result<Self> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("invalid store URL {:?}: expected scheme://...", redact(s)),
            )
        })?;
        let valid_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(Error::new(
                ErrorKind::Config,
                format!("invalid store URL {:?}: bad scheme", redact(s)),
            ));
        }
        let (target, query) = match rest.split_once('?') {
            Some((t, q)) => (t, Some(q)),
            None => (rest, None),
        };
        let mut params = Vec::new();
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                params.push((percent_decode(k)?, percent_decode(v)?));
            }
        }
        Ok(StoreUrl {
            raw: s.to_owned(),
            scheme: scheme.to_ascii_lowercase(),
            target: percent_decode(target)?,
            params,
        })
    }

    /// The scheme, lowercased.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Everything between `scheme://` and `?`, percent-decoded.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The last value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every query parameter in order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A query parameter parsed as `T`, with a clear error naming the parameter.
    pub fn parse_param<T: FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: fmt::Display,
    {
        match self.param(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "invalid value {v:?} for URL parameter `{name}` of {}: {e}",
                        self.redacted()
                    ),
                )
            }),
        }
    }

    /// Fails if the URL has a parameter not in `known`: a typo must not be silently ignored.
    pub fn reject_unknown_params(&self, known: &[&str]) -> Result<()> {
        for (k, _) in &self.params {
            if !known.contains(&k.as_str()) {
                let list = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "unknown URL parameter `{k}` for {}:// (known: {list})",
                        self.scheme
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The URL with its secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }
}

impl FromStr for StoreUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        StoreUrl::parse(s)
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({:?})", self.redacted())
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host` and the values of secret-looking
/// query parameters with `***`. Works on any text, parseable or not.
///
/// ```
/// use kv_core::url::redact;
///
/// assert_eq!(redact("postgres://u:p%40ss@db/x?sslmode=require"), "postgres://u:***@db/x?sslmode=require");
/// assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
/// assert_eq!(redact("s3://bucket?secret_access_key=abc&region=x"), "s3://bucket?secret_access_key=***&region=x");
/// assert_eq!(redact("memory://"), "memory://");
/// ```
pub fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match head.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            // Userinfo ends at the last '@' before the first '/' of the path: hosts lists
            // (`a:1,b:2`) contain ':' but never '@'.
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = authority.split_at(at);
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(head),
    }
    if let Some(q) = query {
        out.push('?');
        let mut first = true;
        for pair in q.split('&') {
            if !first {
                out.push('&');
            }
            first = false;
            let (k, v) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            out.push_str(k);
            if let Some(v) = v {
                out.push('=');
                let lk = k.to_ascii_lowercase();
                if SECRET_PARAMS
                    .iter()
                    .any(|s| lk == *s || lk.ends_with(&format!("_{s}")))
                {
                    out.push_str("***");
                } else {
                    out.push_str(v);
                }
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        "invalid percent-encoding in store URL",
                    ));
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Error::new(ErrorKind::Config, "store URL does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_params() {
        let u = StoreUrl::parse("redb:///tmp/a%20b.redb?x=1&y&x=2").unwrap();
        assert_eq!(u.target(), "/tmp/a b.redb");
        assert_eq!(u.param("x"), Some("2"));
        assert_eq!(u.param("y"), Some(""));
        assert_eq!(u.parse_param::<u32>("x").unwrap(), Some(2));
        assert!(u.parse_param::<u32>("y").is_err());
        assert!(u.reject_unknown_params(&["x"]).is_err());
        assert!(u.reject_unknown_params(&["x", "y"]).is_ok());
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "nothing", "://x", "1abc://x", "a b://x", "redb://%zz"] {
            assert!(StoreUrl::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn redaction_never_shows_the_password() {
        for s in [
            "redis://user:hunter2@host:1/0",
            "redis://:hunter2@host",
            "rediss://u:hunter2@a:1,b:2/?x=1",
            "postgres://u:hunter2@h/db?password=hunter2",
            "x://h?api_key=hunter2",
        ] {
            let r = redact(s);
            assert!(!r.contains("hunter2"), "{s} -> {r}");
        }
        let url = StoreUrl::parse("redis://u:hunter2@h").unwrap();
        let err = url.parse_param::<u8>("none").unwrap();
        assert!(err.is_none());
        assert!(!format!("{url} {url:?}").contains("hunter2"));
    }
}
