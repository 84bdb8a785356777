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
use std::ops::Deref;

use kv_core::sync::BlockOn;
use kv_core::{Error, ErrorKind, Result, SyncStore};

/// A store with blocking methods: [`SyncStore`] over a [`crate::Store`], driven by a
/// [`Runtime`]. Every method of [`SyncStore`] is available through `Deref`.
pub struct Store {
    inner: SyncStore<crate::Store, Runtime>,
}

impl Deref for Store {
    type Target = SyncStore<crate::Store, Runtime>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.inner.info();
        f.debug_struct("blocking::Store")
            .field("kind", &info.kind)
            .field("location", &info.location)
            .finish()
    }
}

impl Store {
    /// Opens a store by URL (see [`crate::open`]).
    ///
    /// Fails with [`ErrorKind::Unsupported`] inside an async runtime, where blocking would
    /// stall the runtime: use [`crate::open`] there.
    pub fn open(url: &str) -> Result<Self> {
        let rt = Runtime::new()?;
        let store = rt.block_on(crate::open(url))?;
        Ok(Store {
            inner: SyncStore::with_executor(store, rt),
        })
    }

    /// Wraps an already opened store.
    pub fn from_store(store: crate::Store) -> Result<Self> {
        Ok(Store {
            inner: SyncStore::with_executor(store, Runtime::new()?),
        })
    }

    /// The blocking store with its runtime, e.g. to move it elsewhere.
    pub fn into_inner(self) -> SyncStore<crate::Store, Runtime> {
        self.inner
    }
}

/// A small single-threaded Tokio runtime that runs one call at a time to completion: the
/// executor of [`Store`]. It refuses to run inside another async runtime (an error, not a
/// deadlock or a panic).
pub struct Runtime {
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    /// Starts the runtime. It may be created inside an async runtime (to be moved to a
    /// blocking thread, e.g. with `spawn_blocking`), but only used outside one.
    pub fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Backend, "cannot start the blocking runtime").with_source(e)
            })?;
        Ok(Runtime { rt: Some(rt) })
    }
}

impl BlockOn for Runtime {
    fn block_on<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match &self.rt {
            Some(rt) if tokio::runtime::Handle::try_current().is_err() => rt.block_on(fut),
            _ => Err(inside_runtime()),
        }
    }
}

impl Drop for Runtime {
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

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("blocking::Runtime")
    }
}

fn inside_runtime() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "kv::blocking cannot run inside an async runtime; use the async API there",
    )
}
