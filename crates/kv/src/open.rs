//! `kv::open(url)`: one entry point for every store compiled in.

use std::sync::Arc;

use kv_core::url::StoreUrl;
use kv_core::{Error, ErrorKind, Operation, Result};

use crate::Store;

/// The URL schemes of the stores compiled into this build.
///
/// ```
/// assert!(kv::schemes().contains(&"memory"));
/// ```
pub fn schemes() -> &'static [&'static str] {
    &[
        #[cfg(feature = "memory")]
        "memory",
        #[cfg(feature = "disk")]
        "redb",
        #[cfg(feature = "disk")]
        "disk",
        #[cfg(feature = "null")]
        "null",
    ]
}

/// Opens the store a URL names, e.g. `memory://`, `redb://data/app.redb` (relative) or
/// `redb:///var/lib/app.redb` (absolute).
///
/// Unknown schemes, stores not compiled in (see the crate features), unknown URL parameters
/// and unusable paths are [`ErrorKind::Config`] errors whose message says what to do.
/// Passwords never appear in errors.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv::Result<()> {
/// use kv::prelude::*;
///
/// let store = kv::open("memory://?max_entries=1000").await?;
/// store.put("c", "k", &1).await?;
/// assert_eq!(store.info().kind, "memory");
///
/// let err = kv::open("nosuch://x").await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
/// # Ok(()) }
/// ```
pub async fn open(url: &str) -> Result<Store> {
    let parsed = StoreUrl::parse(url).map_err(|e| {
        if !url.contains("://") {
            Error::new(
                ErrorKind::Config,
                format!(
                    "{:?} is not a store URL: expected scheme://..., e.g. memory:// or redb://{}",
                    kv_core::url::redact(url),
                    kv_core::url::redact(url)
                ),
            )
        } else {
            e
        }
        .with_operation(Operation::Open)
    })?;
    let store: Store = match parsed.scheme() {
        #[cfg(feature = "memory")]
        "memory" => Arc::new(kv_store_memory::MemoryStore::open(url)?),
        #[cfg(feature = "disk")]
        "redb" | "disk" => Arc::new(kv_store_disk::DiskStore::open(url)?),
        #[cfg(feature = "null")]
        "null" => Arc::new(kv_store_null::NullStore::open(url)?),
        other => return Err(unknown_scheme(other)),
    };
    Ok(store)
}

fn unknown_scheme(scheme: &str) -> Error {
    let known = schemes().join("://, ");
    let hint = match scheme {
        "memory" | "redb" | "disk" | "null" => format!(
            "the `{scheme}` store is not compiled in: enable the kv crate feature that provides it"
        ),
        _ => format!("unknown store scheme `{scheme}://`"),
    };
    Error::new(ErrorKind::Config, format!("{hint} (available: {known}://)"))
        .with_operation(Operation::Open)
}
