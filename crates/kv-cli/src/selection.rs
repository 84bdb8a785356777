//! Which store a command uses: `--store URL`, else `$KV_STORE`, else the embedded default.

use std::fmt;
use std::path::PathBuf;

use crate::default_store;
use crate::error::{CliError, CliResult};

/// Where the store URL came from (shown by `kv info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `--store` option.
    Flag,
    /// The `KV_STORE` environment variable.
    Env,
    /// The embedded default store at this path.
    Default(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("--store"),
            Source::Env => f.write_str("KV_STORE"),
            Source::Default(_) => f.write_str("default"),
        }
    }
}

/// The store a command uses.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The URL (may hold secrets: show it only through `kv::url::redact`).
    pub url: String,
    /// Where it came from.
    pub source: Source,
}

impl Selection {
    /// Picks the store: the flag, else `KV_STORE` (empty = unset), else the default store.
    pub fn resolve(flag: Option<&str>) -> CliResult<Self> {
        if let Some(url) = flag {
            return Ok(Selection {
                url: url.to_owned(),
                source: Source::Flag,
            });
        }
        match std::env::var("KV_STORE") {
            Ok(url) if !url.is_empty() => {
                return Ok(Selection {
                    url,
                    source: Source::Env,
                });
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(CliError::new("KV_STORE is not valid UTF-8"));
            }
            _ => {}
        }
        let path = default_store::path()?;
        Ok(Selection {
            url: default_store::url_for(&path)?,
            source: Source::Default(path),
        })
    }

    /// Opens the store (creating the default store's directory first if needed).
    pub async fn open(&self) -> CliResult<kv::Store> {
        if let Source::Default(path) = &self.source {
            default_store::ensure_dir(path)?;
            return kv::open(&self.url).await.map_err(|e| {
                CliError::open(format_args!("the default store at {}", path.display()), &e)
            });
        }
        open(&self.url).await
    }
}

/// Opens a store by URL with a CLI error naming the (redacted) URL.
pub async fn open(url: &str) -> CliResult<kv::Store> {
    kv::open(url)
        .await
        .map_err(|e| CliError::open(format_args!("store {}", kv::url::redact(url)), &e))
}
