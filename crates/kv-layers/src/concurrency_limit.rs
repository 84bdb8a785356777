//! A bulkhead: at most `n` operations in flight in the store at once; the others wait for a
//! slot, in the order they arrived.
//!
//! A backend that slows down makes callers pile up; without a bound, every one of them holds
//! a connection, memory and a task, and the slowdown spreads to the whole program. The layer
//! bounds that: operation `n + 1` waits until one of the `n` in flight finishes. With
//! [`max_wait`](ConcurrencyLimitLayer::max_wait), one that has waited that long fails with a
//! temporary [`ErrorKind::Unavailable`] error naming the layer (a [`retry`](crate::retry)
//! layer above may try again later); `Duration::ZERO` fails at once when every slot is taken.
//!
//! Every operation except `close` takes one slot for as long as it runs, a batch or a scan page
//! included; `close` is never held back. The slots are a `tokio::sync::Semaphore` shared by
//! every clone of the wrapped store (each store the layer wraps gets slots of its own); a
//! cancelled operation gives its slot back at once.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::concurrency_limit::ConcurrencyLimitLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let layer = ConcurrencyLimitLayer::new(16).max_wait(Duration::from_secs(2));
//! let store = MemoryStore::new().with(layer);
//! store.put("c", "k", &1).await?;
//! assert_eq!(store.in_flight(), 0);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;
use std::time::Duration;

use kv_core::{Error, ErrorKind, KvStore, Layer, Operation, Result};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::around::Call;

const LAYER: &str = "concurrency_limit";

/// The configuration of a [`ConcurrencyLimit`] store: how many operations may run at once,
/// and how long the others may wait for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcurrencyLimitLayer {
    max: usize,
    max_wait: Option<Duration>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` operations in flight (0 is treated as 1); the others wait as long as it
    /// takes.
    ///
    /// ```
    /// let layer = kv_layers::concurrency_limit::ConcurrencyLimitLayer::new(32);
    /// # let _ = layer;
    /// ```
    pub fn new(max: usize) -> Self {
        ConcurrencyLimitLayer {
            max: max.clamp(1, Semaphore::MAX_PERMITS),
            max_wait: None,
        }
    }

    /// An operation that has waited `d` for a slot fails with a temporary
    /// [`ErrorKind::Unavailable`] error (`Duration::ZERO`: at once, if no slot is free).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::concurrency_limit::ConcurrencyLimitLayer::new(32)
    ///     .max_wait(Duration::from_millis(500));
    /// # let _ = layer;
    /// ```
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = Some(d);
        self
    }
}

impl<S: KvStore> Layer<S> for ConcurrencyLimitLayer {
    type Store = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit {
            inner,
            config: *self,
            slots: Arc::new(Semaphore::new(self.max)),
        }
    }
}

/// A store with a bound on operations in flight; see [`ConcurrencyLimitLayer`]. Clones share
/// the slots.
#[derive(Clone, Debug)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    config: ConcurrencyLimitLayer,
    slots: Arc<Semaphore>,
}

impl<S> ConcurrencyLimit<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::concurrency_limit::ConcurrencyLimitLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(ConcurrencyLimitLayer::new(8));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// How many operations are in flight now (in this store and its clones).
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::concurrency_limit::ConcurrencyLimitLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(ConcurrencyLimitLayer::new(8));
    /// assert_eq!(store.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.config.max - self.slots.available_permits()
    }

    /// Runs an operation while holding a slot.
    async fn around<T, F, Fut>(&self, call: Call<'_>, mut run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let _slot = self.slot(call.op, call.collection, call.key).await?;
        run().await
    }

    /// Waits for a slot (at most `max_wait`); the slot is held until the permit is dropped.
    async fn slot(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
    ) -> Result<SemaphorePermit<'_>> {
        let acquire = self.slots.acquire();
        let acquired = match self.config.max_wait {
            None => acquire.await,
            // `timeout` polls the acquisition before looking at the clock, so a free slot is
            // taken even with a zero wait.
            Some(wait) => tokio::time::timeout(wait, acquire).await.map_err(|_| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "concurrency limit: {} operations in flight, no slot freed within {wait:?}",
                        self.config.max
                    ),
                )
                .with_context(LAYER, op, collection, key)
            })?,
        };
        // The semaphore is never closed; should it be, say so rather than panic.
        acquired.map_err(|_| {
            Error::new(ErrorKind::Closed, "the concurrency limit was shut down")
                .with_context(LAYER, op, collection, key)
        })
    }
}

// `close` goes straight through: closing is never held back (see the module docs).
around!(ConcurrencyLimit { get_opts, get_many_opts, put_opts, put_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts } forward { info, close });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use bytes::Bytes;
    use kv_core::{Entry, GetOptions, KvStoreExt, PutOptions};
    use kv_store_memory::MemoryStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A memory store whose gets and puts take 10 ms, recording how many run at once.
    #[derive(Clone, Default)]
    struct Slow {
        inner: MemoryStore,
        now: Arc<AtomicUsize>,
        max: Arc<AtomicUsize>,
    }

    impl Slow {
        async fn slowly<T>(&self, work: impl std::future::Future<Output = T>) -> T {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            let out = work.await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            out
        }
    }

    impl KvStore for Slow {
        async fn get_opts(&self, c: &str, k: &str, o: GetOptions) -> Result<Option<Entry>> {
            self.slowly(self.inner.get_opts(c, k, o)).await
        }
        async fn put_opts(&self, c: &str, k: &str, v: Bytes, o: PutOptions) -> Result<()> {
            self.slowly(self.inner.put_opts(c, k, v, o)).await
        }
        forward!(inner; info, get_many_opts, put_many_opts, delete_opts, delete_many_opts,
            ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts, close);
    }

    // Paused time: the 10 ms sleeps pass in virtual time.
    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_flight() {
        for limit in [1, 3, 8] {
            let slow = Slow::default();
            let store = slow.clone().with(ConcurrencyLimitLayer::new(limit));
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.put("c", &format!("k{i}"), &i).await.unwrap();
                        store.get::<i32>("c", &format!("k{i}")).await.unwrap()
                    })
                })
                .collect();
            for (i, t) in tasks.into_iter().enumerate() {
                assert_eq!(t.await.unwrap(), Some(i as i32));
            }
            assert_eq!(slow.max.load(Ordering::SeqCst), limit, "limit {limit}");
            assert_eq!(store.in_flight(), 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn max_wait_fails_with_a_temporary_error_and_cancel_frees_the_slot() {
        let flaky = Flaky::new();
        let layer = ConcurrencyLimitLayer::new(2).max_wait(Duration::from_secs(1));
        let store = flaky.clone().with(layer);
        flaky.hang(true);
        let hung: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get::<i32>("c", "k").await })
            })
            .collect();
        while flaky.calls() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(store.in_flight(), 2);

        let start = tokio::time::Instant::now();
        let err = store.put("c", "k", &1).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_temporary());
        assert_eq!(err.store(), Some("concurrency_limit"));
        assert_eq!(err.operation(), Some(Operation::Put));
        assert_eq!((err.collection(), err.key()), (Some("c"), Some("k")));
        assert!(err.to_string().contains("2 operations in flight"), "{err}");
        assert_eq!(flaky.calls(), 2, "the store was not called");

        // Cancelling a hung operation frees its slot.
        hung[0].abort();
        flaky.hang(false);
        store.put("c", "k", &1).await.unwrap();
        assert_eq!(flaky.calls(), 3);
        // close is never held back, even with the other slot still taken.
        assert_eq!(store.in_flight(), 1);
        store.close().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn zero_wait_takes_a_free_slot_and_fails_on_a_full_one() {
        let flaky = Flaky::new();
        let layer = ConcurrencyLimitLayer::new(1).max_wait(Duration::ZERO);
        let store = flaky.clone().with(layer);
        store.put("c", "k", &1).await.unwrap();
        flaky.hang(true);
        let hung = tokio::spawn({
            let store = store.clone();
            async move { store.collections().await }
        });
        while flaky.calls() < 2 {
            tokio::task::yield_now().await;
        }
        // Bounded, so that a regression fails instead of hanging in the flaky store.
        let delete = tokio::time::timeout(Duration::from_secs(60), store.delete("c", "k"));
        let err = delete.await.expect("no wait").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        hung.abort();
    }

    #[test]
    fn zero_means_one() {
        assert_eq!(ConcurrencyLimitLayer::new(0).max, 1);
        assert_eq!(
            ConcurrencyLimitLayer::new(usize::MAX).max,
            Semaphore::MAX_PERMITS
        );
    }
}
