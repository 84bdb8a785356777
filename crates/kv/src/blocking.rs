//! A synchronous API for programs without an async runtime.
//!
//! [`Store`] owns a small single-threaded Tokio runtime and runs each call to completion on
//! it. Do not use it from inside an async runtime (it returns an error there instead of
//! deadlocking); use the async API instead.
//!
//! ```
//! use std::time::Duration;
//!
//! let store = kv::blocking::Store::open("memory://")?;
//! store.put("users", "alice", &serde_json::json!({"age": 30}))?;
//! store.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(60))?;
//! assert!(store.exists("sessions", "s1")?);
//! assert_eq!(store.keys("users")?, vec!["alice".to_owned()]);
//! # Ok::<(), kv::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::TryStreamExt;
use kv_core::{
    Bytes, Entry, Error, ErrorKind, KvStore, KvStoreExt, PutOptions, Result, StoreInfo, Ttl,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A store with blocking methods. See the [module docs](self).
pub struct Store {
    inner: crate::Store,
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Dropping a runtime inside another runtime panics; shut it down in the background
        // there instead.
        if let Some(rt) = self.rt.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Store")
            .field("kind", &self.inner.info().kind)
            .field("location", &self.inner.info().location)
            .finish()
    }
}

impl Store {
    /// Opens a store by URL (see [`crate::open`]).
    pub fn open(url: &str) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(inside_runtime());
        }
        let rt = runtime()?;
        let inner = rt.block_on(crate::open(url))?;
        Ok(Store {
            inner,
            rt: Some(rt),
        })
    }

    /// Wraps an already opened store.
    pub fn from_store(inner: crate::Store) -> Result<Self> {
        Ok(Store {
            inner,
            rt: Some(runtime()?),
        })
    }

    /// The async handle, e.g. to pass to async code later.
    pub fn as_async(&self) -> &crate::Store {
        &self.inner
    }

    fn run<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        match &self.rt {
            Some(rt) if tokio::runtime::Handle::try_current().is_err() => rt.block_on(f),
            _ => Err(inside_runtime()),
        }
    }

    /// What the store is and can do.
    pub fn info(&self) -> &StoreInfo {
        self.inner.info()
    }

    /// Reads and decodes a JSON value.
    pub fn get<T: DeserializeOwned>(&self, collection: &str, key: &str) -> Result<Option<T>> {
        self.run(self.inner.get(collection, key))
    }

    /// Reads the raw value.
    pub fn get_bytes(&self, collection: &str, key: &str) -> Result<Option<Bytes>> {
        self.run(self.inner.get_bytes(collection, key))
    }

    /// Reads the raw value with its metadata.
    pub fn get_entry(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        self.run(self.inner.get_entry(collection, key))
    }

    /// Reads many JSON values; one slot per key, in order.
    pub fn get_many<T: DeserializeOwned>(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> Result<Vec<Option<T>>> {
        self.run(self.inner.get_many(collection, keys))
    }

    /// Writes a value as JSON.
    pub fn put<T: Serialize + ?Sized>(&self, collection: &str, key: &str, value: &T) -> Result<()> {
        self.run(self.inner.put(collection, key, value))
    }

    /// Writes a value as JSON with a time to live.
    pub fn put_with_ttl<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        self.run(self.inner.put_with_ttl(collection, key, value, ttl))
    }

    /// Writes a raw value with full options.
    pub fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Bytes>,
        opts: PutOptions,
    ) -> Result<()> {
        self.run(self.inner.put_opts(collection, key, value.into(), opts))
    }

    /// Writes a raw value.
    pub fn put_bytes(&self, collection: &str, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.run(self.inner.put_bytes(collection, key, value))
    }

    /// Writes only if absent; `Ok(false)` if a live entry exists.
    pub fn put_if_absent<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<bool> {
        self.run(self.inner.put_if_absent(collection, key, value))
    }

    /// Writes many JSON values in one batch.
    pub fn put_many<T: Serialize>(&self, collection: &str, entries: &[(&str, T)]) -> Result<()> {
        self.run(self.inner.put_many(collection, entries))
    }

    /// Deletes an entry; `true` if it existed.
    pub fn delete(&self, collection: &str, key: &str) -> Result<bool> {
        self.run(self.inner.delete(collection, key))
    }

    /// Deletes many entries; returns how many existed.
    pub fn delete_many(&self, collection: &str, keys: &[&str]) -> Result<u64> {
        self.run(self.inner.delete_many(collection, keys))
    }

    /// The remaining lifetime; `None` if missing.
    pub fn ttl(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        self.run(self.inner.ttl(collection, key))
    }

    /// True if a live entry exists.
    pub fn exists(&self, collection: &str, key: &str) -> Result<bool> {
        self.run(self.inner.exists(collection, key))
    }

    /// Every key of a collection.
    pub fn keys(&self, collection: &str) -> Result<Vec<String>> {
        self.run(self.inner.keys(collection).try_collect())
    }

    /// Every key of a collection that starts with `prefix`.
    pub fn keys_with_prefix(&self, collection: &str, prefix: &str) -> Result<Vec<String>> {
        self.run(
            self.inner
                .keys_with_prefix(collection, prefix)
                .try_collect(),
        )
    }

    /// The number of live entries in a collection.
    pub fn len(&self, collection: &str) -> Result<u64> {
        self.run(self.inner.len(collection))
    }

    /// True if a collection has no live entry.
    pub fn is_empty(&self, collection: &str) -> Result<bool> {
        self.run(self.inner.is_empty(collection))
    }

    /// The collections holding entries.
    pub fn collections(&self) -> Result<Vec<String>> {
        self.run(self.inner.collections())
    }

    /// Removes every entry of a collection; returns how many.
    pub fn clear(&self, collection: &str) -> Result<u64> {
        self.run(self.inner.clear(collection))
    }

    /// Removes everything this store owns.
    pub fn destroy(&self) -> Result<()> {
        self.run(self.inner.destroy())
    }

    /// Removes expired entries; returns how many.
    pub fn cull(&self) -> Result<u64> {
        self.run(self.inner.cull())
    }

    /// Flushes and releases the store.
    pub fn close(&self) -> Result<()> {
        self.run(self.inner.close())
    }
}

fn inside_runtime() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "kv::blocking cannot run inside an async runtime; use the async API there",
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Backend, "cannot start the blocking runtime").with_source(e)
        })
}
