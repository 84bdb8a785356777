//! A read-through cache: reads are served from a fast store (the cache) when it holds the
//! entry, and from the wrapped store (the source of truth) otherwise.
//!
//! `MemoryStore::new().with(..)` is the usual cache, in front of a remote store; any
//! [`KvStore`] can be one (a local Redis in front of a far PostgreSQL, for instance). The
//! model is py-key-value's `PassthroughCacheWrapper`.
//!
//! | operation | what happens |
//! |---|---|
//! | `get`, `get_many` | the cache first; misses are read from the inner store and copied into the cache |
//! | `put`, `put_many`, `delete`, `delete_many` | the inner store, then the cached copies are removed (*invalidated*) |
//! | `clear` | the inner store's collection, then the cache's |
//! | `destroy` | the inner store, then the cache: everything the stack owns |
//! | `cull`, `close` | the inner store, then the cache |
//! | `ttl`, `scan`, `collections` | the inner store only, as the cache holds a subset |
//!
//! **What is cached.** The whole [`Entry`] — value, `expires_at`, `created_at` and `version` —
//! in the native [envelope] format (`0xC1 0x01 flags [expires_at]
//! [created_at] [version] value`), so a read served by the cache returns the inner store's
//! metadata and compare-and-swap ([`PutMode::IfVersion`](kv_core::PutMode::IfVersion)) with a
//! version read through the cache works. The envelope holds numeric versions, which every kv
//! store uses; an entry with an opaque version is never cached, only read through.
//!
//! **How long.** A copy lives in the cache for the entry's remaining lifetime, but at most
//! [`max_ttl`](CacheLayer::max_ttl) (30 minutes by default, as in py-key-value), and within
//! the cache's own TTL limit. An entry is checked against its `expires_at` on every cache hit
//! too, so a cache that rounds TTLs up never returns an expired entry. Misses are not cached.
//!
//! **Coherence.** A write through this layer invalidates the cached copy before it returns,
//! and a miss being filled concurrently with a write cannot leave the old value behind: each
//! fill checks, after writing its copy, whether the key was written meanwhile (a per-key
//! generation counter, striped over 256 slots) and removes its copy if so. Writes that do not
//! go through this layer — another process, or the inner store used directly — are seen once
//! the copy expires, after at most `max_ttl`. Choose it as the staleness you accept.
//!
//! **Why invalidate rather than write through.** A put does not return the entry's new
//! version or `created_at`, so a copy written through would lack them (breaking
//! compare-and-swap) or need a second read of the inner store on every write; the next read
//! fills the cache at the same cost, and only for keys that are read.
//!
//! **Failures.** The cache is an optimisation, so a cache that fails a read (or holds bytes
//! that are not an envelope) is bypassed: the entry is read from the inner store. A failed
//! fill is ignored. A failed invalidation (`put`, `delete`, `clear`, ... reached the inner
//! store but the old copy may remain) is returned as an error of the cache's kind, saying so;
//! a key the cache cannot hold ([`ErrorKind::InvalidKey`]) has no copy to remove and is fine.
//! `cull` ignores the cache's result. Operations reach the inner store first, so its errors
//! are returned as they are.
//!
//! The layer owns the cache store it is given: `destroy` and `close` reach it too. To share
//! one cache store between several stacks, give each a [`PrefixCollectionsLayer`] view of it.
//!
//! [`PrefixCollectionsLayer`]: crate::prefix_collections::PrefixCollectionsLayer
//!
//! ```
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::cache::CacheLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let source = MemoryStore::new(); // stands for a remote store
//! let store = source
//!     .clone()
//!     .with(CacheLayer::new(MemoryStore::new()).max_ttl(Duration::from_secs(60)));
//! store.put("users", "alice", &30).await?;
//! assert_eq!(store.get::<u32>("users", "alice").await?, Some(30)); // read through, cached
//!
//! // A write that bypasses the layer is not seen until the copy expires.
//! source.put("users", "alice", &31).await?;
//! assert_eq!(store.get::<u32>("users", "alice").await?, Some(30));
//! // A write through the layer is.
//! store.put("users", "alice", &32).await?;
//! assert_eq!(store.get::<u32>("users", "alice").await?, Some(32));
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kv_core::envelope::{self, Meta};
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry, Error,
    ErrorKind, GetOptions, KvStore, Layer, Operation, PutManyOptions, PutOptions, Result,
    ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
};

const LAYER: &str = "cache";

/// The default longest time a copy stays in the cache: 30 minutes.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 60);

/// Generation counters, one per slot; keys hash to slots. Two keys sharing a slot only cost
/// an extra removal of a fresh copy, never a stale read.
const SLOTS: usize = 256;

/// Per-key write generations, shared by every store one [`CacheLayer`] made.
#[derive(Debug)]
struct Generations {
    hasher: RandomState,
    slots: Box<[AtomicU64]>,
}

impl Generations {
    fn new() -> Self {
        Generations {
            hasher: RandomState::new(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, collection: &str, key: &str) -> &AtomicU64 {
        let h = self.hasher.hash_one((collection, key));
        &self.slots[(h % SLOTS as u64) as usize]
    }

    fn get(&self, collection: &str, key: &str) -> u64 {
        self.slot(collection, key).load(Ordering::SeqCst)
    }

    fn bump(&self, collection: &str, key: &str) {
        self.slot(collection, key).fetch_add(1, Ordering::SeqCst);
    }

    fn bump_all(&self) {
        for s in self.slots.iter() {
            s.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The configuration of a [`Cached`] store: the cache store and how long copies live.
#[derive(Clone, Debug)]
pub struct CacheLayer<C> {
    cache: C,
    max_ttl: Option<Duration>,
    generations: Arc<Generations>,
}

impl<C> CacheLayer<C> {
    /// Caches entries in `cache`, each for at most [`DEFAULT_MAX_TTL`].
    ///
    /// ```
    /// let layer = kv_layers::cache::CacheLayer::new(kv_store_memory::MemoryStore::new());
    /// # let _ = layer;
    /// ```
    pub fn new(cache: C) -> Self {
        CacheLayer {
            cache,
            max_ttl: Some(DEFAULT_MAX_TTL),
            generations: Arc::new(Generations::new()),
        }
    }

    /// The longest time a copy stays in the cache, or `None` for as long as the entry lives
    /// (only safe if nothing writes to the inner store but this layer). `Some(ZERO)` caches
    /// nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::cache::CacheLayer;
    /// let layer = CacheLayer::new(kv_store_memory::MemoryStore::new())
    ///     .max_ttl(Duration::from_secs(10));
    /// # let _ = layer;
    /// ```
    pub fn max_ttl(mut self, max_ttl: impl Into<Option<Duration>>) -> Self {
        self.max_ttl = max_ttl.into();
        self
    }
}

impl<S: KvStore, C: KvStore + Clone> Layer<S> for CacheLayer<C> {
    type Store = Cached<S, C>;

    fn layer(&self, inner: S) -> Cached<S, C> {
        let cache_cap = self.cache.info().capability;
        let max_ttl = match (self.max_ttl, cache_cap.ttl.then_some(cache_cap.ttl_max)) {
            // A cache without TTLs keeps copies until they are invalidated or expire.
            (_, None) => None,
            (Some(a), Some(Some(b))) => Some(a.min(b)),
            (a, Some(b)) => a.or(b),
        };
        Cached {
            inner,
            cache: self.cache.clone(),
            max_ttl,
            cache_ttl: cache_cap.ttl,
            generations: self.generations.clone(),
        }
    }
}

/// A store whose reads go through a cache; see [`CacheLayer`] and the
/// [module documentation](self).
#[derive(Clone, Debug)]
pub struct Cached<S, C> {
    inner: S,
    cache: C,
    /// The TTL cap of copies (the configured one within the cache's limit).
    max_ttl: Option<Duration>,
    /// Whether the cache store accepts TTLs at all.
    cache_ttl: bool,
    generations: Arc<Generations>,
}

impl<S, C> Cached<S, C> {
    /// The wrapped store (the source of truth).
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::cache::CacheLayer;
    /// use kv_store_memory::MemoryStore;
    /// let store = MemoryStore::new().with(CacheLayer::new(MemoryStore::new()));
    /// let _source: &MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The cache store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::cache::CacheLayer;
    /// use kv_store_memory::MemoryStore;
    /// let store = MemoryStore::new().with(CacheLayer::new(MemoryStore::new()));
    /// let _cache: &MemoryStore = store.cache();
    /// ```
    pub fn cache(&self) -> &C {
        &self.cache
    }
}

/// The entry a cached copy holds, unless the copy is not an envelope or has expired.
fn from_copy(copy: Entry, now: Timestamp) -> Option<Entry> {
    let (meta, value) = envelope::decode(copy.value).ok()?;
    (!meta.is_expired_at(now)).then(|| meta.into_entry(value))
}

/// A failed invalidation: the write happened, but the old copy may still be served.
fn invalidation_failed(err: Error, op: Operation, collection: &str, key: Option<&str>) -> Error {
    let msg = "the inner store was written, but the cache could not be updated \
               (reads may return old entries until their cached copies expire)";
    Error::new(err.kind(), msg)
        .temporary(err.is_temporary())
        .with_context(LAYER, op, Some(collection), key)
        .with_source(err)
}

impl<S: KvStore, C: KvStore> Cached<S, C> {
    /// The copy of `entry` to cache and its TTL, or `None` if it must not be cached.
    fn copy_of(&self, entry: &Entry, now: Timestamp) -> Option<(Option<Duration>, Bytes)> {
        let version = match &entry.version {
            None => None,
            Some(v) => Some(v.as_u64()?),
        };
        let remaining = match entry.expires_at {
            None => None,
            Some(at) => Some(at.duration_since(now).filter(|d| !d.is_zero())?),
        };
        let ttl = match (remaining, self.max_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if ttl.is_some_and(|t| t.is_zero()) || (ttl.is_some() && !self.cache_ttl) {
            // A cache without TTLs cannot hold an expiring entry's copy past its expiry; the
            // hit check would hide it, but it would never be removed.
            return None;
        }
        let meta = Meta {
            expires_at: entry.expires_at,
            created_at: entry.created_at,
            version,
        };
        Some((ttl, Bytes::from(envelope::encode(&meta, &entry.value))))
    }

    /// Copies entries read from the inner store into the cache (best effort), then removes
    /// the copies of keys written since their generation was taken.
    async fn fill(&self, collection: &str, read: &[(&str, &Entry, u64)]) {
        let now = Timestamp::now();
        let mut by_ttl: BTreeMap<Option<Duration>, Vec<(&str, Bytes)>> = BTreeMap::new();
        for (key, entry, _) in read {
            if let Some((ttl, copy)) = self.copy_of(entry, now) {
                by_ttl.entry(ttl).or_default().push((key, copy));
            }
        }
        for (ttl, copies) in by_ttl {
            let _ = match copies.as_slice() {
                [(key, copy)] => {
                    let opts = PutOptions::default().with_ttl_opt(ttl);
                    self.cache
                        .put_opts(collection, key, copy.clone(), opts)
                        .await
                }
                _ => {
                    let opts = PutManyOptions::default().with_ttl_opt(ttl);
                    self.cache.put_many_opts(collection, &copies, opts).await
                }
            };
        }
        let stale: Vec<&str> = read
            .iter()
            .filter(|(key, _, generation)| self.generations.get(collection, key) != *generation)
            .map(|(key, _, _)| *key)
            .collect();
        if !stale.is_empty() {
            let _ = self
                .cache
                .delete_many_opts(collection, &stale, DeleteOptions::default())
                .await;
        }
    }

    /// Removes the copies of `keys` after a write to them (whether or not it succeeded: a
    /// failed write may still have happened).
    async fn invalidate(&self, op: Operation, collection: &str, keys: &[&str]) -> Result<()> {
        for key in keys {
            self.generations.bump(collection, key);
        }
        let result = match keys {
            [key] => self
                .cache
                .delete_opts(collection, key, DeleteOptions::default())
                .await
                .map(drop),
            _ => self
                .cache
                .delete_many_opts(collection, keys, DeleteOptions::default())
                .await
                .map(drop),
        };
        match result {
            Err(e) if e.kind() != ErrorKind::InvalidKey => {
                let key = if let [key] = keys { Some(*key) } else { None };
                Err(invalidation_failed(e, op, collection, key))
            }
            _ => Ok(()),
        }
    }

    /// Runs a write on the inner store, then invalidates `keys`; the write's error wins.
    async fn write<T>(
        &self,
        op: Operation,
        collection: &str,
        keys: &[&str],
        write: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = write.await;
        let invalidated = self.invalidate(op, collection, keys).await;
        let value = result?;
        invalidated?;
        Ok(value)
    }
}

impl<S: KvStore, C: KvStore> KvStore for Cached<S, C> {
    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        // The inner store's name for the collection, so `""` and the default collection's
        // name share one copy.
        let c = self.inner.info().resolve(collection);
        if let Ok(Some(copy)) = self.cache.get_opts(c, key, opts.clone()).await {
            if let Some(entry) = from_copy(copy, Timestamp::now()) {
                return Ok(Some(entry));
            }
        }
        let generation = self.generations.get(c, key);
        let entry = self.inner.get_opts(collection, key, opts).await?;
        if let Some(e) = &entry {
            self.fill(c, &[(key, e, generation)]).await;
        }
        Ok(entry)
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let c = self.inner.info().resolve(collection);
        let now = Timestamp::now();
        let mut out: Vec<Option<Entry>> =
            match self.cache.get_many_opts(c, keys, opts.clone()).await {
                Ok(copies) if copies.len() == keys.len() => copies
                    .into_iter()
                    .map(|copy| copy.and_then(|copy| from_copy(copy, now)))
                    .collect(),
                _ => vec![None; keys.len()],
            };
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let missing_keys: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        let generations: Vec<u64> = missing_keys
            .iter()
            .map(|k| self.generations.get(c, k))
            .collect();
        let read = self
            .inner
            .get_many_opts(collection, &missing_keys, opts)
            .await?;
        if read.len() != missing_keys.len() {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "the inner store returned {} entries for {} keys",
                    read.len(),
                    missing_keys.len()
                ),
            )
            .with_context(LAYER, Operation::GetMany, Some(collection), None));
        }
        let found: Vec<(&str, &Entry, u64)> = missing_keys
            .iter()
            .zip(&read)
            .zip(&generations)
            .filter_map(|((k, e), g)| e.as_ref().map(|e| (*k, e, *g)))
            .collect();
        self.fill(c, &found).await;
        for (i, entry) in missing.into_iter().zip(read) {
            out[i] = entry;
        }
        Ok(out)
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let c = self.inner.info().resolve(collection);
        let write = self.inner.put_opts(collection, key, value, opts);
        self.write(Operation::Put, c, &[key], write).await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let c = self.inner.info().resolve(collection);
        let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        let write = self.inner.put_many_opts(collection, entries, opts);
        self.write(Operation::PutMany, c, &keys, write).await
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let c = self.inner.info().resolve(collection);
        let write = self.inner.delete_opts(collection, key, opts);
        self.write(Operation::Delete, c, &[key], write).await
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let c = self.inner.info().resolve(collection);
        let write = self.inner.delete_many_opts(collection, keys, opts);
        self.write(Operation::DeleteMany, c, keys, write).await
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let c = self.inner.info().resolve(collection);
        let result = self.inner.clear_opts(collection, opts.clone()).await;
        self.generations.bump_all();
        let cleared = self.cache.clear_opts(c, opts).await;
        let n = result?;
        cleared.map_err(|e| invalidation_failed(e, Operation::Clear, c, None))?;
        Ok(n)
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let result = self.inner.destroy_opts(opts.clone()).await;
        self.generations.bump_all();
        let destroyed = self.cache.destroy_opts(opts).await;
        result?;
        destroyed.map_err(|e| {
            let msg = "the inner store was destroyed, but the cache could not be";
            Error::new(e.kind(), msg)
                .temporary(e.is_temporary())
                .with_context(LAYER, Operation::Destroy, None, None)
                .with_source(e)
        })
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let n = self.inner.cull_opts(opts.clone()).await?;
        // Expired copies are never served; culling them only frees memory.
        let _ = self.cache.cull_opts(opts).await;
        Ok(n)
    }

    async fn close(&self) -> Result<()> {
        let result = self.inner.close().await;
        let closed = self.cache.close().await;
        result?;
        closed.map_err(|e| e.with_context(LAYER, Operation::Close, None, None))
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        self.inner.ttl_opts(collection, key, opts).await
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        self.inner.scan_opts(collection, opts).await
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        self.inner.collections_opts(opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use kv_core::{KvStoreExt, PutMode, Version};
    use kv_store_memory::MemoryStore;

    /// A cached stack over a call-counting inner store, with the cache's memory store.
    fn stack(max_ttl: Option<Duration>) -> (Cached<Flaky, MemoryStore>, Flaky, MemoryStore) {
        let inner = Flaky::new();
        let cache = MemoryStore::new();
        let store = inner
            .clone()
            .with(CacheLayer::new(cache.clone()).max_ttl(max_ttl));
        (store, inner, cache)
    }

    #[tokio::test]
    async fn hits_are_served_without_the_inner_store() {
        let (s, inner, _) = stack(Some(DEFAULT_MAX_TTL));
        s.put("c", "k", &1).await.unwrap();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        let calls = inner.calls();
        for _ in 0..5 {
            assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        }
        let got = s.get_many::<i32>("c", &["k", "k"]).await.unwrap();
        assert_eq!(got, vec![Some(1), Some(1)]);
        assert_eq!(inner.calls(), calls, "every read after the first was a hit");
    }

    #[tokio::test]
    async fn get_many_reads_only_the_misses_from_the_inner_store() {
        let (s, inner, cache) = stack(None);
        s.put_many("c", &[("a", 1), ("b", 2)]).await.unwrap();
        assert_eq!(s.get::<i32>("c", "a").await.unwrap(), Some(1));
        inner.fail_next(1);
        inner.permanent(true);
        // Only "b" and "z" go to the inner store, which fails once...
        assert!(s.get_many::<i32>("c", &["a", "b", "z"]).await.is_err());
        // ...then answers; "a" still comes from the cache, "b" is filled.
        let got = s.get_many::<i32>("c", &["a", "b", "z"]).await.unwrap();
        assert_eq!(got, vec![Some(1), Some(2), None]);
        assert!(cache.get_entry("c", "b").await.unwrap().is_some());
        assert!(
            cache.get_entry("c", "z").await.unwrap().is_none(),
            "misses are not cached"
        );
    }

    #[tokio::test]
    async fn hits_return_the_inner_metadata_so_cas_works() {
        let (s, inner, _) = stack(Some(DEFAULT_MAX_TTL));
        s.put_with_ttl("c", "k", &1, Duration::from_secs(600))
            .await
            .unwrap();
        let first = s.get_entry("c", "k").await.unwrap().unwrap();
        let calls = inner.calls();
        let hit = s.get_entry("c", "k").await.unwrap().unwrap();
        assert_eq!(inner.calls(), calls);
        let source = inner.inner.get_entry("c", "k").await.unwrap().unwrap();
        assert_eq!(hit, source);
        assert_eq!(first, source);
        let version = hit.version.clone().unwrap();
        let cas = PutOptions::default().with_mode(PutMode::IfVersion(version.clone()));
        s.put_opts("c", "k", Bytes::from_static(b"2"), cas.clone())
            .await
            .unwrap();
        // The old version no longer matches: the copy was invalidated, not served stale.
        let err = s.put_opts("c", "k", Bytes::from_static(b"3"), cas).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::ConditionFailed);
        let now = s.get_entry("c", "k").await.unwrap().unwrap();
        assert_ne!(now.version, Some(version));
        assert_eq!(&now.value[..], b"2");
    }

    #[tokio::test]
    async fn copies_live_at_most_max_ttl_and_the_entry_lifetime() {
        let max = Duration::from_secs(60);
        let (s, _, cache) = stack(Some(max));
        s.put("c", "forever", &1).await.unwrap();
        s.put_with_ttl("c", "long", &1, Duration::from_secs(3600))
            .await
            .unwrap();
        s.put_with_ttl("c", "short", &1, Duration::from_secs(10))
            .await
            .unwrap();
        s.get_many::<i32>("c", &["forever", "long", "short"])
            .await
            .unwrap();
        let ttl = |k: &'static str| {
            let cache = cache.clone();
            async move {
                cache
                    .ttl("c", k)
                    .await
                    .unwrap()
                    .unwrap()
                    .remaining()
                    .unwrap()
            }
        };
        assert!(ttl("forever").await <= max);
        assert!(ttl("long").await <= max);
        assert!(ttl("long").await > Duration::from_secs(10));
        assert!(ttl("short").await <= Duration::from_secs(10));
    }

    #[tokio::test]
    async fn without_max_ttl_copies_follow_the_entry() {
        let (s, _, cache) = stack(None);
        s.put("c", "forever", &1).await.unwrap();
        s.get::<i32>("c", "forever").await.unwrap();
        assert_eq!(cache.ttl("c", "forever").await.unwrap(), Some(Ttl::Never));
    }

    #[tokio::test]
    async fn zero_max_ttl_caches_nothing() {
        let (s, _, cache) = stack(Some(Duration::ZERO));
        s.put("c", "k", &1).await.unwrap();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        assert!(cache.get_entry("c", "k").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn writes_and_deletes_invalidate() {
        let (s, _, cache) = stack(Some(DEFAULT_MAX_TTL));
        s.put_many("c", &[("a", 1), ("b", 1)]).await.unwrap();
        let read = |s: &Cached<Flaky, MemoryStore>| {
            let s = s.clone();
            async move { s.get_many::<i32>("c", &["a", "b"]).await.unwrap() }
        };
        read(&s).await;
        s.put("c", "a", &2).await.unwrap();
        assert!(cache.get_entry("c", "a").await.unwrap().is_none());
        assert_eq!(read(&s).await, vec![Some(2), Some(1)]);
        s.put_many("c", &[("a", 3), ("b", 3)]).await.unwrap();
        assert_eq!(read(&s).await, vec![Some(3), Some(3)]);
        assert!(s.delete("c", "a").await.unwrap());
        assert_eq!(read(&s).await, vec![None, Some(3)]);
        assert_eq!(s.delete_many("c", &["a", "b"]).await.unwrap(), 1);
        assert_eq!(read(&s).await, vec![None, None]);
        assert!(cache.is_empty("c").await.unwrap());
    }

    #[tokio::test]
    async fn a_failed_write_still_invalidates() {
        let (s, inner, cache) = stack(Some(DEFAULT_MAX_TTL));
        s.put("c", "k", &1).await.unwrap();
        s.get::<i32>("c", "k").await.unwrap();
        inner.fail_next(1);
        assert!(s.put("c", "k", &2).await.is_err());
        assert!(cache.get_entry("c", "k").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_default_collection_has_one_copy() {
        let (s, _, cache) = stack(Some(DEFAULT_MAX_TTL));
        s.put("", "k", &1).await.unwrap();
        s.get::<i32>("default_collection", "k").await.unwrap();
        s.put("", "k", &2).await.unwrap();
        assert_eq!(
            s.get::<i32>("default_collection", "k").await.unwrap(),
            Some(2)
        );
        assert_eq!(
            cache.collections().await.unwrap(),
            vec!["default_collection"]
        );
    }

    #[tokio::test]
    async fn a_fill_racing_a_write_removes_its_copy() {
        let (s, _, cache) = stack(Some(DEFAULT_MAX_TTL));
        s.put("c", "k", &1).await.unwrap();
        let old = s.inner().get_entry("c", "k").await.unwrap().unwrap();
        // A reader took its generation and read the old entry, then a write happened...
        let generation = s.generations.get("c", "k");
        s.put("c", "k", &2).await.unwrap();
        // ...and the reader fills the cache afterwards: the copy must not survive.
        s.fill("c", &[("k", &old, generation)]).await;
        assert!(cache.get_entry("c", "k").await.unwrap().is_none());
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(2));
    }

    #[tokio::test]
    async fn a_failing_or_garbled_cache_is_bypassed_on_reads() {
        let inner = MemoryStore::new();
        let cache = Flaky::new();
        let s = inner.clone().with(CacheLayer::new(cache.clone()));
        s.put("c", "k", &1).await.unwrap();
        cache.fail_next(1);
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        cache
            .inner
            .put_bytes("c", "k", "not an envelope")
            .await
            .unwrap();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        // The garbled copy was replaced by a good one.
        assert!(
            from_copy(
                cache.inner.get_entry("c", "k").await.unwrap().unwrap(),
                Timestamp::now()
            )
            .is_some()
        );
    }

    #[tokio::test]
    async fn a_failed_invalidation_is_reported() {
        let cache = Flaky::new();
        let s = MemoryStore::new().with(CacheLayer::new(cache.clone()));
        cache.fail_next(1);
        let err = s.put("c", "k", &1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.store(), Some(LAYER));
        assert!(
            err.message().contains("cache could not be updated"),
            "{err}"
        );
        // The write itself happened.
        assert_eq!(s.inner().get::<i32>("c", "k").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn expired_copies_are_never_served() {
        let (s, inner, cache) = stack(None);
        let copy = envelope::encode(
            &Meta {
                expires_at: Some(Timestamp::from_unix_micros(1)),
                created_at: None,
                version: Some(1),
            },
            b"1",
        );
        cache.put_bytes("c", "k", copy).await.unwrap();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), None);
        assert!(inner.calls() > 0);
    }

    #[tokio::test]
    async fn opaque_versions_are_read_through() {
        let (s, _, _) = stack(None);
        let entry = Entry::new(Bytes::from_static(b"1"))
            .with_version(Some(Version::from_bytes(b"etag".to_vec())));
        assert!(s.copy_of(&entry, Timestamp::now()).is_none());
        let numeric = entry.with_version(Some(Version::from_u64(3)));
        assert!(s.copy_of(&numeric, Timestamp::now()).is_some());
    }

    #[tokio::test]
    async fn clear_destroy_and_close_reach_the_cache() {
        let (s, _, cache) = stack(None);
        s.put_many("c", &[("a", 1), ("b", 1)]).await.unwrap();
        s.put("d", "a", &1).await.unwrap();
        s.get_many::<i32>("c", &["a", "b"]).await.unwrap();
        s.get::<i32>("d", "a").await.unwrap();
        assert_eq!(s.clear("c").await.unwrap(), 2);
        assert!(cache.is_empty("c").await.unwrap());
        assert!(!cache.is_empty("d").await.unwrap());
        s.destroy().await.unwrap();
        assert!(cache.collections().await.unwrap().is_empty());
        s.close().await.unwrap();
        let closed = cache.get::<i32>("d", "a").await.unwrap_err();
        assert_eq!(closed.kind(), ErrorKind::Closed);
    }

    #[tokio::test]
    async fn listings_and_ttl_come_from_the_inner_store() {
        let (s, inner, cache) = stack(None);
        inner.inner.put("c", "only-inner", &1).await.unwrap();
        cache.put("c", "only-cache", &1).await.unwrap();
        assert_eq!(crate::testutil::keys(&s, "c").await, vec!["only-inner"]);
        assert_eq!(s.collections().await.unwrap(), vec!["c"]);
        assert_eq!(s.ttl("c", "only-cache").await.unwrap(), None);
    }
}
