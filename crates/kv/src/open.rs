//! `kv::open(url)`: one entry point for every store compiled in.

use kv_core::url::StoreUrl;
use kv_core::{Error, ErrorKind, Operation, Result};

use crate::Store;

/// Every store this facade knows: (feature, schemes, how it opens). One line per store; the
/// `schemes()` list, `open()` dispatch and the "not compiled in" hint all come from it.
/// `sync` openers (embedded stores opening files) run on the blocking pool; `async` ones
/// (network clients) connect on the runtime.
macro_rules! stores {
    ($( $feature:literal => [$($scheme:literal),+] => $kind:ident $open:path; )+) => {
        /// The URL schemes of the stores compiled into this build.
        ///
        /// ```
        /// assert!(kv::schemes().contains(&"memory"));
        /// ```
        pub fn schemes() -> &'static [&'static str] {
            &[$($( #[cfg(feature = $feature)] $scheme, )+)+]
        }

        /// Every scheme kv knows, compiled in or not.
        const ALL_SCHEMES: &[&str] = &[$($($scheme,)+)+];

        async fn open_scheme(scheme: &str, url: &str) -> Result<Store> {
            match scheme {
                $(
                    #[cfg(feature = $feature)]
                    $($scheme)|+ => Ok(std::sync::Arc::new(stores!(@open $kind $open, url))),
                )+
                other => Err(unknown_scheme(other)),
            }
        }

        /// The crate feature that provides a scheme.
        fn feature_of(scheme: &str) -> Option<&'static str> {
            match scheme {
                $( $($scheme)|+ => Some($feature), )+
                _ => None,
            }
        }
    };
    (@open sync $open:path, $url:ident) => {
        run_blocking($url, |u| $open(u)).await?
    };
    (@open async $open:path, $url:ident) => {
        $open($url).await?
    };
}

/// Runs a synchronous opener on the blocking pool (opening a file may read or repair it), or
/// inline outside a Tokio runtime.
#[allow(dead_code)] // unused when only network stores are compiled in
async fn run_blocking<S: Send + 'static>(url: &str, open: fn(&str) -> Result<S>) -> Result<S> {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return open(url);
    };
    let owned = url.to_owned();
    rt.spawn_blocking(move || open(&owned)).await.map_err(|e| {
        Error::new(ErrorKind::Backend, format!("opening the store failed: {e}"))
            .with_operation(Operation::Open)
    })?
}

stores! {
    "memory" => ["memory"] => sync kv_store_memory::MemoryStore::open;
    "disk" => ["redb", "disk"] => sync kv_store_disk::DiskStore::open;
    "null" => ["null"] => sync kv_store_null::NullStore::open;
    "multidisk" => ["multidisk"] => sync kv_store_multidisk::MultiDiskStore::open;
    "filetree" => ["filetree"] => sync kv_store_filetree::FileTreeStore::open;
    "jsonfile" => ["jsonfile"] => sync kv_store_jsonfile::JsonFileStore::open;
    "log" => ["log"] => sync kv_store_log::LogStore::open;
    "sqlite" => ["sqlite"] => sync kv_store_sqlite::SqliteStore::open;
    "lmdb" => ["lmdb"] => sync kv_store_lmdb::LmdbStore::open;
    "leveldb" => ["leveldb"] => sync kv_store_leveldb::LevelDbStore::open;
    "rocksdb" => ["rocksdb"] => sync kv_store_rocksdb::RocksDbStore::open;
    "unqlite" => ["unqlite"] => sync kv_store_unqlite::UnqliteStore::open;
    "duckdb" => ["duckdb"] => sync kv_store_duckdb::DuckDbStore::open;
    "safetensors" => ["safetensors"] => sync kv_store_safetensors::SafetensorsStore::open;
    "redis" => ["redis", "rediss", "redis+cluster", "rediss+cluster", "valkey", "valkeys",
        "valkey+cluster", "valkeys+cluster"] => async kv_store_redis::RedisStore::connect;
    "postgres" => ["postgres", "postgresql"] => async kv_store_postgres::PostgresStore::connect;
    "mysql" => ["mysql", "mariadb"] => async kv_store_mysql::MysqlStore::connect;
    "memcached" => ["memcached"] => async kv_store_memcached::MemcachedStore::connect;
    "nats" => ["nats"] => async kv_store_nats::NatsStore::connect;
    "etcd" => ["etcd"] => async kv_store_etcd::EtcdStore::connect;
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
    open_scheme(parsed.scheme(), url).await
}

fn unknown_scheme(scheme: &str) -> Error {
    let known = schemes().join("://, ");
    debug_assert!(ALL_SCHEMES.iter().all(|s| feature_of(s).is_some()));
    let hint = match feature_of(scheme) {
        Some(feature) => format!(
            "the `{scheme}` store is not compiled in: enable the kv crate feature `{feature}`"
        ),
        None => format!("unknown store scheme `{scheme}://`"),
    };
    Error::new(ErrorKind::Config, format!("{hint} (available: {known}://)"))
        .with_operation(Operation::Open)
}
