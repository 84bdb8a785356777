//! What a case receives: the store under test and the harness hooks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_core::{Capability, DynStore, Error, ErrorKind, KvStore, Result};

use crate::runner::Harness;

/// The store under test, plus access to the harness (a second store, corruption, reopen).
pub struct Fixture {
    store: DynStore,
    harness: Arc<Harness>,
    /// The latest store, for the runner to clean up after a reopen.
    latest: Arc<Mutex<DynStore>>,
}

impl Fixture {
    pub(crate) fn new(
        store: DynStore,
        harness: Arc<Harness>,
        latest: Arc<Mutex<DynStore>>,
    ) -> Self {
        Fixture {
            store,
            harness,
            latest,
        }
    }

    /// The store under test.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Its capability.
    pub fn cap(&self) -> Capability {
        self.store.info().capability
    }

    /// A second store from the same harness, with its own isolated data.
    pub async fn open_another(&self) -> Result<DynStore> {
        (self.harness.open)().await
    }

    /// Writes bytes that are not a valid stored value under `(collection, key)`.
    pub async fn corrupt(&self, collection: &str, key: &str) -> Result<()> {
        match &self.harness.corrupt {
            Some(f) => f(self.store.clone(), collection.to_owned(), key.to_owned()).await,
            None => Err(Error::new(ErrorKind::Unsupported, "no corrupt hook")),
        }
    }

    /// Closes the store and opens the same data again.
    pub async fn reopen(&mut self) -> Result<()> {
        match &self.harness.reopen {
            Some(f) => {
                self.store = f(self.store.clone()).await?;
                *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = self.store.clone();
                Ok(())
            }
            None => Err(Error::new(ErrorKind::Unsupported, "no reopen hook")),
        }
    }

    /// A TTL short enough to wait for, long enough to read the entry before it expires, and a
    /// whole multiple of the store's TTL granularity.
    pub fn short_ttl(&self) -> Duration {
        let g = self.cap().ttl_granularity;
        let base = Duration::from_millis(300);
        if g <= Duration::from_micros(1) {
            base
        } else {
            kv_core::ttl::round_up(base, g)
        }
    }

    /// How long to wait for an entry with [`Fixture::short_ttl`] to have expired.
    pub fn expiry_wait(&self) -> Duration {
        self.short_ttl() + self.cap().ttl_granularity + Duration::from_millis(200)
    }
}
