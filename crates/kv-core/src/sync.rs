//! A synchronous API over any store: [`SyncStore`].
//!
//! Embedded stores (memory, redb, SQLite, LMDB, ...) do their work on the calling thread or on
//! a blocking pool, never on an async runtime's reactor, so their futures can be driven by the
//! tiny [`Park`] executor: the calling thread parks until the future completes. Stores that
//! need a runtime (network clients) are driven by a runtime instead — the `kv` facade's
//! `kv::blocking::Store` is a `SyncStore` whose executor is a Tokio runtime.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Entry, KvStore, KvStoreExt, PutOptions, Result, StoreInfo, Ttl};

/// Drives a future to completion on the calling thread.
///
/// An executor may refuse (for example a Tokio runtime called from inside another runtime)
/// by returning an error instead of blocking or panicking.
pub trait BlockOn {
    /// Runs `fut` to completion and returns its result.
    fn block_on<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T>;
}

/// The smallest executor: polls the future on the calling thread and parks the thread until
/// it is woken. Enough for every embedded store; a future that needs a Tokio reactor (a
/// network client) never completes under it — use a runtime for those.
///
/// ```
/// use kv_core::sync::{BlockOn, Park};
///
/// let n = Park.block_on(async { Ok::<_, kv_core::Error>(42) })?;
/// assert_eq!(n, 42);
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Park;

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl BlockOn for Park {
    fn block_on<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let mut fut = pin!(fut);
        // Most futures of embedded stores are ready at once: poll first without building the
        // thread's waker (an allocation and a reference count per call). A future that
        // returns `Pending` is polled again with the real waker before the thread parks, so
        // it wakes the waker it was given last, as the `Future` contract requires.
        if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return r;
        }
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => return r,
                // A spurious unpark only costs one more poll.
                Poll::Pending => thread::park(),
            }
        }
    }
}

/// A store with blocking methods: the same operations as [`KvStore`] and [`KvStoreExt`],
/// run to completion by an executor `E` ([`Park`] by default).
///
/// Embedded stores hand one out with their `sync()` method; any store can be wrapped with
/// [`SyncStore::new`].
///
/// ```
/// use std::time::Duration;
/// # use kv_core::*;
/// # fn demo(store: impl KvStore) -> Result<()> {
/// let store = kv_core::SyncStore::new(store);
/// store.put("users", "alice", &serde_json::json!({"age": 30}))?;
/// store.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(60))?;
/// assert!(store.exists("sessions", "s1")?);
/// assert_eq!(store.keys("users")?, vec!["alice".to_owned()]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SyncStore<S, E = Park> {
    store: S,
    exec: E,
}

impl<S: KvStore, E> fmt::Debug for SyncStore<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.store.info();
        f.debug_struct("SyncStore")
            .field("kind", &info.kind)
            .field("location", &info.location)
            .finish()
    }
}

impl<S: KvStore> SyncStore<S, Park> {
    /// Wraps a store whose futures need no async runtime (every embedded store).
    pub fn new(store: S) -> Self {
        SyncStore { store, exec: Park }
    }
}

impl<S: KvStore, E: BlockOn> SyncStore<S, E> {
    /// Wraps a store with an executor of your choice (e.g. one owning a Tokio runtime).
    pub fn with_executor(store: S, exec: E) -> Self {
        SyncStore { store, exec }
    }

    /// The async store, e.g. to hand to async code later.
    pub fn as_async(&self) -> &S {
        &self.store
    }

    /// The executor.
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// Unwraps the async store.
    pub fn into_async(self) -> S {
        self.store
    }

    /// Runs any async operation of the store to completion, for what has no method here:
    /// `store.run(|s| s.scan_opts("c", opts))`.
    pub fn run<'a, T, F>(&'a self, op: impl FnOnce(&'a S) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'a,
    {
        self.exec.block_on(op(&self.store))
    }

    /// What the store is and can do.
    pub fn info(&self) -> &StoreInfo {
        self.store.info()
    }

    /// Reads and decodes a JSON value.
    pub fn get<T: DeserializeOwned>(&self, collection: &str, key: &str) -> Result<Option<T>> {
        self.exec.block_on(self.store.get(collection, key))
    }

    /// Reads the raw value.
    pub fn get_bytes(&self, collection: &str, key: &str) -> Result<Option<Bytes>> {
        self.exec.block_on(self.store.get_bytes(collection, key))
    }

    /// Reads the raw value with its metadata.
    pub fn get_entry(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        self.exec.block_on(self.store.get_entry(collection, key))
    }

    /// Reads many JSON values; one slot per key, in order.
    pub fn get_many<T: DeserializeOwned>(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> Result<Vec<Option<T>>> {
        self.exec.block_on(self.store.get_many(collection, keys))
    }

    /// Writes a value as JSON.
    pub fn put<T: Serialize + ?Sized>(&self, collection: &str, key: &str, value: &T) -> Result<()> {
        self.exec.block_on(self.store.put(collection, key, value))
    }

    /// Writes a value as JSON with a time to live.
    pub fn put_with_ttl<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        self.exec
            .block_on(self.store.put_with_ttl(collection, key, value, ttl))
    }

    /// Writes a raw value with full options (TTL, put-if-absent, compare-and-swap).
    pub fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Bytes>,
        opts: PutOptions,
    ) -> Result<()> {
        self.exec
            .block_on(self.store.put_opts(collection, key, value.into(), opts))
    }

    /// Writes a raw value.
    pub fn put_bytes(&self, collection: &str, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.exec
            .block_on(self.store.put_bytes(collection, key, value))
    }

    /// Writes only if absent; `Ok(false)` if a live entry exists.
    pub fn put_if_absent<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<bool> {
        self.exec
            .block_on(self.store.put_if_absent(collection, key, value))
    }

    /// Writes many JSON values in one batch.
    pub fn put_many<T: Serialize>(&self, collection: &str, entries: &[(&str, T)]) -> Result<()> {
        self.exec.block_on(self.store.put_many(collection, entries))
    }

    /// Deletes an entry; `true` if it existed.
    pub fn delete(&self, collection: &str, key: &str) -> Result<bool> {
        self.exec.block_on(self.store.delete(collection, key))
    }

    /// Deletes many entries; returns how many existed.
    pub fn delete_many(&self, collection: &str, keys: &[&str]) -> Result<u64> {
        self.exec.block_on(self.store.delete_many(collection, keys))
    }

    /// The remaining lifetime; `None` if missing.
    pub fn ttl(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        self.exec
            .block_on(KvStoreExt::ttl(&self.store, collection, key))
    }

    /// True if a live entry exists.
    pub fn exists(&self, collection: &str, key: &str) -> Result<bool> {
        self.exec.block_on(self.store.exists(collection, key))
    }

    /// Every key of a collection, in order where the store scans in order.
    pub fn keys(&self, collection: &str) -> Result<Vec<String>> {
        self.exec
            .block_on(self.store.keys(collection).try_collect())
    }

    /// Every key of a collection that starts with `prefix`.
    pub fn keys_with_prefix(&self, collection: &str, prefix: &str) -> Result<Vec<String>> {
        self.exec.block_on(
            self.store
                .keys_with_prefix(collection, prefix)
                .try_collect(),
        )
    }

    /// The number of live entries in a collection.
    pub fn len(&self, collection: &str) -> Result<u64> {
        self.exec.block_on(self.store.len(collection))
    }

    /// True if a collection has no live entry.
    pub fn is_empty(&self, collection: &str) -> Result<bool> {
        self.exec.block_on(self.store.is_empty(collection))
    }

    /// The collections holding entries.
    pub fn collections(&self) -> Result<Vec<String>> {
        self.exec.block_on(KvStoreExt::collections(&self.store))
    }

    /// Removes every entry of a collection; returns how many.
    pub fn clear(&self, collection: &str) -> Result<u64> {
        self.exec
            .block_on(KvStoreExt::clear(&self.store, collection))
    }

    /// Removes everything this store owns.
    pub fn destroy(&self) -> Result<()> {
        self.exec.block_on(KvStoreExt::destroy(&self.store))
    }

    /// Removes expired entries; returns how many.
    pub fn cull(&self) -> Result<u64> {
        self.exec.block_on(KvStoreExt::cull(&self.store))
    }

    /// Flushes and releases the store.
    pub fn close(&self) -> Result<()> {
        self.exec.block_on(self.store.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn park_waits_for_a_wake_from_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let start = Instant::now();
        let fut = std::future::poll_fn(move |cx| {
            if rx.try_recv().is_ok() {
                return Poll::Ready(Ok::<_, crate::Error>(7));
            }
            let waker = cx.waker().clone();
            let tx = tx.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(5));
                let _ = tx.send(());
                waker.wake();
            });
            Poll::Pending
        });
        assert_eq!(Park.block_on(fut).unwrap(), 7);
        assert!(start.elapsed() >= Duration::from_millis(5));
    }
}
