//! Runs one load per key at a time: concurrent callers of
//! [`SingleFlight::get_or_insert_with`] for the same missing entry wait for the first one's
//! loader instead of each running their own (a "cache stampede"), and concurrent `get`s of the
//! same key share one read of the inner store.
//!
//! The coalescing is per process (per [`SingleFlightLayer`], whose stores share their
//! in-flight table): callers in other processes still run their own loads, and the if-absent
//! put of [`SingleFlight::get_or_insert_with`] then makes every process agree on one value.
//!
//! **Loads.** The first caller for a `(collection, key)` becomes the leader: it reads the
//! entry again (a load that just finished may have stored it), runs the loader, encodes the
//! value with the layer's [`Codec`] and stores it (if-absent where the store can, so a value
//! stored meanwhile by someone else wins and is what everybody gets). Every caller, the leader
//! included, decodes the same stored bytes. If the loader or the store fails, every waiting
//! caller gets an error with the same kind, message and context; the failure is not
//! remembered, so the next call loads again. If the leader is cancelled (its future dropped,
//! e.g. by a timeout), a waiting caller takes over and runs its own loader.
//!
//! **Reads.** A `get` that finds a read of the same key in flight waits for it and returns its
//! result instead of reading again. A write through this layer (`put`, `delete`, their batch
//! forms, `clear`, `destroy`) ends the sharing of reads that started before it completed, so a
//! caller always reads its own writes. A shared read may have started up to one round trip
//! before the caller asked — as if the caller's read had been that much faster — which can
//! only matter for writes made elsewhere. [`SingleFlightLayer::coalesce_gets`] turns read
//! sharing off. `get_many`, scans and the other operations pass through.
//!
//! Each coalesced operation costs a lock and two small allocations for the table key. A
//! loader must not call `get_or_insert_with` for its own key: it would wait for itself.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::single_flight::SingleFlightLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Clones share the in-flight table (and the memory store).
//! let store = MemoryStore::new().with(SingleFlightLayer::new());
//! let loads = Arc::new(AtomicU32::new(0));
//! let mut tasks = Vec::new();
//! for _ in 0..10 {
//!     let (store, loads) = (store.clone(), loads.clone());
//!     tasks.push(tokio::spawn(async move {
//!         store
//!             .get_or_insert_with("reports", "2026-q1", None, || async move {
//!                 loads.fetch_add(1, Ordering::SeqCst);
//!                 Ok(vec![1u32, 2, 3]) // an expensive computation
//!             })
//!             .await
//!     }));
//! }
//! for task in tasks {
//!     assert_eq!(task.await.unwrap()?, vec![1, 2, 3]);
//! }
//! assert_eq!(loads.load(Ordering::SeqCst), 1);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kv_core::{
    ClearOptions, Codec, DeleteOptions, DestroyOptions, Entry, Error, ErrorKind, GetOptions,
    KvStore, Layer, Operation, PutManyOptions, PutMode, PutOptions, Result, StoreInfo,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// The result every caller of one flight gets: a clone of the value, or the shared error.
type Shared<V> = std::result::Result<V, Arc<Error>>;

/// An error shared by the callers of a flight, as each caller's own [`Error`]: the same kind,
/// message, temporary flag and context, and the original's cause as its cause, so it prints
/// exactly like the original.
fn share_error(original: &Arc<Error>) -> Error {
    let mut err = Error::new(original.kind(), original.message().to_owned())
        .temporary(original.is_temporary());
    if let Some(store) = original.store() {
        err = err.with_store(store.to_owned());
    }
    if let Some(op) = original.operation() {
        err = err.with_operation(op);
    }
    err = err.rename(original.collection(), original.key());
    if original.source().is_some() {
        err = err.with_source(SharedCause(original.clone()));
    }
    err
}

/// The cause of a shared error: the original error's cause, shown and chained as it is.
struct SharedCause(Arc<Error>);

impl SharedCause {
    fn cause(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause() {
            Some(c) => fmt::Display::fmt(c, f),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause() {
            Some(c) => fmt::Debug::fmt(c, f),
            None => Ok(()),
        }
    }
}

impl StdError for SharedCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause().and_then(StdError::source)
    }
}

/// A flight's channel: `None` until the leader publishes its result. The leader dropping its
/// sender unpublished means it was cancelled.
type Flight<V> = watch::Receiver<Option<Shared<V>>>;

/// The operations in flight, by `(collection, key)`.
struct Flights<V> {
    map: Mutex<HashMap<(String, String), Flight<V>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> fmt::Debug for Flights<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flights")
            .field("in_flight", &self.lock().len())
            .finish()
    }
}

/// What a caller does: wait for a flight, or lead a new one.
enum Role<V> {
    Follow(Flight<V>),
    Lead(watch::Sender<Option<Shared<V>>>, Flight<V>),
}

/// Removes a leader's flight from the table when the leader finishes or is dropped (unless a
/// write removed it already and a newer flight took the slot).
struct Landing<'a, V> {
    flights: &'a Flights<V>,
    key: (String, String),
    flight: Flight<V>,
}

impl<V> Drop for Landing<'_, V> {
    fn drop(&mut self) {
        let mut map = self.flights.lock();
        if map
            .get(&self.key)
            .is_some_and(|f| f.same_channel(&self.flight))
        {
            map.remove(&self.key);
        }
    }
}

impl<V> Flights<V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Flight<V>>> {
        // The table stays consistent even if a thread panicked holding the lock: every
        // critical section is a single insert, lookup or removal.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<V: Clone> Flights<V> {
    fn join_or_lead(&self, key: &(String, String)) -> Role<V> {
        let mut map = self.lock();
        if let Some(flight) = map.get(key) {
            return Role::Follow(flight.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx.clone());
        Role::Lead(tx, rx)
    }

    /// Runs `work` unless a flight for `(collection, key)` is already running, in which case
    /// its result is returned instead.
    async fn run<Fut>(&self, collection: &str, key: &str, work: impl FnOnce() -> Fut) -> Result<V>
    where
        Fut: Future<Output = Result<V>>,
    {
        let key = (collection.to_owned(), key.to_owned());
        let (tx, flight) = loop {
            match self.join_or_lead(&key) {
                Role::Lead(tx, flight) => break (tx, flight),
                Role::Follow(mut flight) => {
                    let published = flight
                        .wait_for(Option::is_some)
                        .await
                        .map(|r| Option::clone(&r));
                    match published {
                        Ok(Some(Ok(v))) => return Ok(v),
                        Ok(Some(Err(e))) => return Err(share_error(&e)),
                        // The leader was cancelled: lead (or follow) a new flight.
                        Ok(None) | Err(_) => continue,
                    }
                }
            }
        };
        let _landing = Landing {
            flights: self,
            key,
            flight,
        };
        match work().await {
            Ok(v) => {
                tx.send_replace(Some(Ok(v.clone())));
                Ok(v)
            }
            Err(e) => {
                let e = Arc::new(e);
                tx.send_replace(Some(Err(e.clone())));
                Err(share_error(&e))
            }
        }
    }

    /// Stops sharing the flight of one key: later callers start a new one.
    fn forget(&self, collection: &str, key: &str) {
        self.lock().remove(&(collection.to_owned(), key.to_owned()));
    }

    /// Stops sharing the flights of a collection, or of every collection.
    fn forget_all(&self, collection: Option<&str>) {
        self.lock()
            .retain(|(c, _), _| collection.is_some_and(|col| col != c));
    }
}

/// The configuration of a [`SingleFlight`] store.
#[derive(Clone, Debug)]
pub struct SingleFlightLayer {
    codec: Codec,
    coalesce_gets: bool,
    loads: Arc<Flights<Bytes>>,
    reads: Arc<Flights<Option<Entry>>>,
}

impl Default for SingleFlightLayer {
    fn default() -> Self {
        SingleFlightLayer {
            codec: Codec::Json,
            coalesce_gets: true,
            loads: Arc::default(),
            reads: Arc::default(),
        }
    }
}

impl SingleFlightLayer {
    /// Loads encoded as JSON; concurrent `get`s of one key share a read.
    ///
    /// ```
    /// let layer = kv_layers::single_flight::SingleFlightLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The codec of the values [`SingleFlight::get_or_insert_with`] stores and reads.
    ///
    /// ```
    /// use kv_core::Codec;
    /// let layer = kv_layers::single_flight::SingleFlightLayer::new().codec(Codec::Postcard);
    /// # let _ = layer;
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Whether concurrent `get`s of one key share one read of the inner store (on by default).
    ///
    /// ```
    /// let layer = kv_layers::single_flight::SingleFlightLayer::new().coalesce_gets(false);
    /// # let _ = layer;
    /// ```
    pub fn coalesce_gets(mut self, yes: bool) -> Self {
        self.coalesce_gets = yes;
        self
    }
}

impl<S: KvStore> Layer<S> for SingleFlightLayer {
    type Store = SingleFlight<S>;

    fn layer(&self, inner: S) -> SingleFlight<S> {
        SingleFlight {
            inner,
            config: self.clone(),
        }
    }
}

/// A store running one load (and one read) per key at a time; see [`SingleFlightLayer`] and
/// the [module documentation](self).
#[derive(Clone, Debug)]
pub struct SingleFlight<S> {
    inner: S,
    config: SingleFlightLayer,
}

impl<S> SingleFlight<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::single_flight::SingleFlightLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(SingleFlightLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: KvStore> SingleFlight<S> {
    /// The value of `(collection, key)`, decoded with the layer's codec; if there is none,
    /// the value `loader` makes, stored with `ttl` — with one loader running per key at a
    /// time in this process, whose result (or error) every concurrent caller gets.
    ///
    /// On a `SingleFlight` store this method takes the place of
    /// [`KvStoreExt::get_or_insert_with`](kv_core::KvStoreExt::get_or_insert_with) (which
    /// runs a loader per caller), with a TTL argument. Share the store by cloning it (clones
    /// share the in-flight table): through an `Arc<SingleFlight<_>>`, which is itself a
    /// `KvStore`, method-call syntax finds the `KvStoreExt` method first — write
    /// `(*arc).get_or_insert_with(..)` there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::single_flight::SingleFlightLayer;
    /// use kv_store_memory::MemoryStore;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new().with(SingleFlightLayer::new());
    /// let ttl = Some(Duration::from_secs(60));
    /// let rate: f64 = store.get_or_insert_with("fx", "EUR/USD", ttl, || async { Ok(1.08) }).await?;
    /// assert_eq!(rate, 1.08);
    /// // Stored: the next call does not run its loader.
    /// let again: f64 = store
    ///     .get_or_insert_with("fx", "EUR/USD", ttl, || async { unreachable!() })
    ///     .await?;
    /// assert_eq!(again, 1.08);
    /// # Ok::<(), kv_core::Error>(()) }).unwrap();
    /// ```
    pub async fn get_or_insert_with<T, F, Fut>(
        &self,
        collection: &str,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        let c = self.inner.info().resolve(collection);
        let stored = match self.get_opts(c, key, GetOptions::default()).await? {
            Some(entry) => entry.value,
            None => {
                self.config
                    .loads
                    .run(c, key, || self.load(c, key, ttl, loader))
                    .await?
            }
        };
        self.config
            .codec
            .decode(&stored)
            .map_err(|e| e.with_context(self.inner.info().kind, Operation::Get, Some(c), Some(key)))
    }

    /// A leader's load: the stored bytes of the entry, loading and storing it if missing.
    async fn load<T, F, Fut>(
        &self,
        collection: &str,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<Bytes>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let inner = &self.inner;
        let read = || inner.get_opts(collection, key, GetOptions::default());
        if let Some(entry) = read().await? {
            return Ok(entry.value);
        }
        let value = loader().await?;
        let bytes = self.config.codec.encode(&value).map_err(|e| {
            e.with_context(
                inner.info().kind,
                Operation::Put,
                Some(collection),
                Some(key),
            )
        })?;
        let opts = PutOptions::default().with_ttl_opt(ttl);
        if !inner.info().capability.if_absent {
            self.put_opts(collection, key, bytes.clone(), opts).await?;
            return Ok(bytes);
        }
        let if_absent = opts.with_mode(PutMode::IfAbsent);
        match self
            .put_opts(collection, key, bytes.clone(), if_absent)
            .await
        {
            Ok(()) => Ok(bytes),
            // Another writer stored a value first: everybody gets that one.
            Err(e) if e.kind() == ErrorKind::ConditionFailed => match read().await? {
                Some(entry) => Ok(entry.value),
                // ...and it is already gone; ours is as good as any.
                None => Ok(bytes),
            },
            Err(e) => Err(e),
        }
    }

    /// Runs a write, then ends the sharing of reads of `keys` that started before it.
    async fn write<T>(
        &self,
        collection: &str,
        keys: &[&str],
        write: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = write.await;
        let c = self.inner.info().resolve(collection);
        for key in keys {
            self.config.reads.forget(c, key);
        }
        result
    }
}

impl<S: KvStore> KvStore for SingleFlight<S> {
    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        if !self.config.coalesce_gets {
            return self.inner.get_opts(collection, key, opts).await;
        }
        let c = self.inner.info().resolve(collection);
        let read = || self.inner.get_opts(collection, key, opts);
        self.config.reads.run(c, key, read).await
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let put = self.inner.put_opts(collection, key, value, opts);
        self.write(collection, &[key], put).await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        let put = self.inner.put_many_opts(collection, entries, opts);
        self.write(collection, &keys, put).await
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let delete = self.inner.delete_opts(collection, key, opts);
        self.write(collection, &[key], delete).await
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let delete = self.inner.delete_many_opts(collection, keys, opts);
        self.write(collection, keys, delete).await
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let result = self.inner.clear_opts(collection, opts).await;
        let c = self.inner.info().resolve(collection);
        self.config.reads.forget_all(Some(c));
        result
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let result = self.inner.destroy_opts(opts).await;
        self.config.reads.forget_all(None);
        result
    }

    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }

    forward!(inner; get_many_opts, ttl_opts, scan_opts, collections_opts, cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use kv_core::{CollectionsOptions, CullOptions, KvStoreExt, ScanOptions, ScanPage, Ttl};
    use kv_store_memory::MemoryStore;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A memory store whose `get` reads the entry, then takes a second (of paused time) to
    /// answer, and counts its calls.
    #[derive(Clone, Default)]
    struct Slow {
        inner: MemoryStore,
        gets: Arc<AtomicU32>,
        puts: Arc<AtomicU32>,
    }

    impl KvStore for Slow {
        async fn get_opts(&self, c: &str, k: &str, o: GetOptions) -> Result<Option<Entry>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let entry = self.inner.get_opts(c, k, o).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            entry
        }
        async fn put_opts(&self, c: &str, k: &str, v: Bytes, o: PutOptions) -> Result<()> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            self.inner.put_opts(c, k, v, o).await
        }
        forward!(inner; info, get_many_opts, put_many_opts, delete_opts, delete_many_opts,
            ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts, close);
    }

    fn slow() -> (SingleFlight<Slow>, Slow) {
        let inner = Slow::default();
        (inner.clone().with(SingleFlightLayer::new()), inner)
    }

    /// Runs `n` concurrent `get_or_insert_with` calls whose loader counts its runs, sleeps a
    /// second and returns `make()`.
    async fn stampede<S: KvStore + Clone>(
        store: &SingleFlight<S>,
        n: usize,
        make: fn() -> Result<String>,
    ) -> (Vec<Result<String>>, u32) {
        let loads = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (store, loads) = (store.clone(), loads.clone());
                tokio::spawn(async move {
                    store
                        .get_or_insert_with("c", "k", None, || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            make()
                        })
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        (results, loads.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn a_hundred_callers_run_one_loader() {
        let (store, inner) = slow();
        let (results, loads) = stampede(&store, 100, || Ok("loaded".to_owned())).await;
        assert_eq!(loads, 1);
        assert!(results.iter().all(|r| matches!(r, Ok(v) if v == "loaded")));
        // One shared read that missed, the leader's second look, one put.
        assert_eq!(inner.gets.load(Ordering::SeqCst), 2);
        assert_eq!(inner.puts.load(Ordering::SeqCst), 1);
        assert_eq!(
            inner
                .inner
                .get::<String>("c", "k")
                .await
                .unwrap()
                .as_deref(),
            Some("loaded")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_callers_on_threads_run_one_loader() {
        let store = MemoryStore::new().with(SingleFlightLayer::new());
        let (results, loads) = stampede(&store, 100, || Ok("loaded".to_owned())).await;
        assert_eq!(loads, 1);
        assert!(results.iter().all(|r| matches!(r, Ok(v) if v == "loaded")));
    }

    #[tokio::test(start_paused = true)]
    async fn every_waiting_caller_gets_the_error_and_the_next_call_loads_again() {
        let (store, _) = slow();
        let fail = || Err(Error::new(ErrorKind::Unavailable, "upstream down").with_key("k"));
        let (results, loads) = stampede(&store, 20, fail).await;
        assert_eq!(loads, 1);
        for r in &results {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert!(e.is_temporary());
            assert_eq!(e.to_string(), "unavailable: upstream down (key: \"k\")");
        }
        let (results, loads) = stampede(&store, 5, || Ok("second".to_owned())).await;
        assert_eq!(loads, 1);
        assert!(results.iter().all(|r| matches!(r, Ok(v) if v == "second")));
    }

    #[test]
    fn shared_errors_keep_context_and_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let original = Error::from(io).with_context("redis", Operation::Get, Some("c"), Some("k"));
        let text = original.to_string();
        let shared = share_error(&Arc::new(original));
        assert_eq!(shared.to_string(), text);
        assert_eq!(shared.kind(), ErrorKind::Unavailable);
        assert_eq!(shared.store(), Some("redis"));
        assert_eq!(shared.operation(), Some(Operation::Get));
        assert_eq!((shared.collection(), shared.key()), (Some("c"), Some("k")));
        assert_eq!(shared.source().unwrap().to_string(), "reset by peer");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_leader_hands_over_to_a_waiting_caller() {
        let store = MemoryStore::new().with(SingleFlightLayer::new());
        let loads = Arc::new(AtomicU32::new(0));
        let call = |value: &'static str| {
            let (store, loads) = (store.clone(), loads.clone());
            tokio::spawn(async move {
                store
                    .get_or_insert_with("c", "k", None, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        Ok(value.to_owned())
                    })
                    .await
            })
        };
        let leader = call("first");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let follower = call("second");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(loads.load(Ordering::SeqCst), 1, "the follower waits");
        leader.abort();
        assert_eq!(follower.await.unwrap().unwrap(), "second");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_gets_share_one_read() {
        let (store, inner) = slow();
        inner.inner.put("c", "k", &1).await.unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get::<i32>("c", "k").await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Some(1));
        }
        assert_eq!(inner.gets.load(Ordering::SeqCst), 1);
        // Sequential gets each read.
        store.get::<i32>("c", "k").await.unwrap();
        assert_eq!(inner.gets.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn read_sharing_can_be_turned_off() {
        let inner = Slow::default();
        let store = inner
            .clone()
            .with(SingleFlightLayer::new().coalesce_gets(false));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get::<i32>("c", "k").await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(inner.gets.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_reads_its_own_write() {
        let (store, inner) = slow();
        inner.inner.put("c", "k", &1).await.unwrap();
        // A read in flight has seen 1 and answers in a second...
        let early = {
            let store = store.clone();
            tokio::spawn(async move { store.get::<i32>("c", "k").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // ...when this caller writes 2 and reads: it must not join the old read.
        store.put("c", "k", &2).await.unwrap();
        assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert_eq!(early.await.unwrap().unwrap(), Some(1));
        for write in ["delete", "put_many", "delete_many", "clear", "destroy"] {
            inner.inner.put("c", "k", &1).await.unwrap();
            let early = {
                let store = store.clone();
                tokio::spawn(async move { store.get::<i32>("c", "k").await })
            };
            tokio::time::sleep(Duration::from_millis(10)).await;
            let done = match write {
                "delete" => store.delete("c", "k").await.map(|_| ()),
                "put_many" => store.put_many("c", &[("k", 3)]).await,
                "delete_many" => store.delete_many("c", &["k"]).await.map(|_| ()),
                "clear" => store.clear("c").await.map(|_| ()),
                _ => store.destroy().await,
            };
            done.unwrap();
            let expected = (write == "put_many").then_some(3);
            assert_eq!(
                store.get::<i32>("c", "k").await.unwrap(),
                expected,
                "{write}"
            );
            early.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_value_stored_first_by_another_writer_wins() {
        let inner = Flaky::new();
        let store = inner.clone().with(SingleFlightLayer::new());
        let got: String = store
            .get_or_insert_with("c", "k", None, || async {
                // Someone else stores a value while we compute ours.
                inner.inner.put("c", "k", &"theirs").await?;
                Ok("ours".to_owned())
            })
            .await
            .unwrap();
        assert_eq!(got, "theirs");
        assert_eq!(
            store.get::<String>("c", "k").await.unwrap().as_deref(),
            Some("theirs")
        );
    }

    #[tokio::test]
    async fn ttl_and_codec_apply_to_stored_values() {
        let inner = MemoryStore::new();
        let store = inner
            .clone()
            .with(SingleFlightLayer::new().codec(Codec::Postcard));
        let ttl = Some(Duration::from_secs(60));
        let v: (u8, String) = store
            .get_or_insert_with("", "k", ttl, || async { Ok((7, "x".to_owned())) })
            .await
            .unwrap();
        assert_eq!(v, (7, "x".to_owned()));
        let raw = inner.get_bytes("", "k").await.unwrap().unwrap();
        assert_eq!(&raw[..], &Codec::Postcard.encode(&(7u8, "x")).unwrap()[..]);
        let left = inner.ttl("", "k").await.unwrap().unwrap();
        assert!(matches!(left, Ttl::Remaining(d) if d <= Duration::from_secs(60)));
        // A stored value of another shape is a serialization error naming the key.
        let err = store
            .get_or_insert_with::<Vec<u64>, _, _>("", "k", ttl, || async { Ok(vec![]) })
            .await;
        let err = err.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Serialization);
        assert_eq!(err.key(), Some("k"));
    }

    #[tokio::test]
    async fn other_operations_pass_through() {
        let inner = MemoryStore::new();
        let store = inner.clone().with(SingleFlightLayer::new());
        store.put_many("c", &[("a", 1), ("b", 2)]).await.unwrap();
        let got = store.get_many::<i32>("c", &["a", "b"]).await.unwrap();
        assert_eq!(got, vec![Some(1), Some(2)]);
        assert_eq!(store.ttl("c", "a").await.unwrap(), Some(Ttl::Never));
        let page: ScanPage = store.scan_opts("c", ScanOptions::default()).await.unwrap();
        assert_eq!(page.items.len(), 2);
        let names = store
            .collections_opts(CollectionsOptions::default())
            .await
            .unwrap();
        assert_eq!(names, vec!["c"]);
        assert_eq!(store.cull_opts(CullOptions::default()).await.unwrap(), 0);
        store.close().await.unwrap();
        assert_eq!(
            inner.get::<i32>("c", "a").await.unwrap_err().kind(),
            ErrorKind::Closed
        );
    }
}
