//! Counts hits, misses, puts, deletes and errors, in total and per collection.
//!
//! Counters are atomics shared by every clone of the store (and every store wrapped by the
//! same [`StatisticsLayer`]); [`Statistics::stats`] (or [`StatisticsLayer::stats`]) takes a
//! snapshot. A `get_many` counts one hit or miss per key, a `put_many` one put per entry, a
//! `delete_many` its removed count as deletes; `ttl` counts as a read. Failed operations count
//! as errors only.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::statistics::StatisticsLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new().with(StatisticsLayer::new());
//! store.put("users", "alice", &1).await?;
//! store.get::<i32>("users", "alice").await?;
//! store.get::<i32>("users", "bob").await?;
//! let stats = store.stats();
//! assert_eq!((stats.total.hits, stats.total.misses, stats.total.puts), (1, 1, 1));
//! assert_eq!(stats.collections["users"].hits, 1);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry,
    GetOptions, KvStore, Layer, PutManyOptions, PutOptions, Result, ScanOptions, ScanPage, Ttl,
};

/// The counters of one collection (or of all of them), at the time of a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionStats {
    /// Reads (`get`, each key of `get_many`, `ttl`) that found a live entry.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Entries written (`put`, each entry of `put_many`).
    pub puts: u64,
    /// Entries removed (`delete` returning true, `delete_many`'s and `clear`'s counts).
    pub deletes: u64,
    /// Deletes that found nothing to remove.
    pub delete_misses: u64,
    /// Operations that failed.
    pub errors: u64,
}

impl CollectionStats {
    /// Hits divided by reads, or `None` before the first read.
    ///
    /// ```
    /// let s = kv_layers::statistics::CollectionStats::default();
    /// assert_eq!(s.hit_ratio(), None);
    /// ```
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

/// A snapshot of a [`Statistics`] store's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Every collection together, plus operations on no collection (`destroy`, `cull`).
    pub total: CollectionStats,
    /// Per collection (the empty name is reported as the default collection).
    pub collections: BTreeMap<String, CollectionStats>,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    delete_misses: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> CollectionStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CollectionStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            puts: get(&self.puts),
            deletes: get(&self.deletes),
            delete_misses: get(&self.delete_misses),
            errors: get(&self.errors),
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    total: Counters,
    collections: RwLock<HashMap<String, Arc<Counters>>>,
}

impl Registry {
    /// Adds each `(counter, n)` to the total and to the collection's counters. The
    /// collection's counters are looked up once, under the read lock (no `Arc` clone on the
    /// hot path); the write lock is only taken for a collection's first count.
    fn add(&self, collection: Option<&str>, counts: Counts) {
        if counts.iter().all(|&(_, n)| n == 0) {
            return;
        }
        let bump = |c: &Counters| {
            for (field, n) in counts {
                if n > 0 {
                    field(c).fetch_add(n, Ordering::Relaxed);
                }
            }
        };
        bump(&self.total);
        let Some(name) = collection else { return };
        if let Some(c) = self
            .collections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            bump(c);
            return;
        }
        let c = self
            .collections
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone();
        bump(&c);
    }

    fn snapshot(&self) -> Stats {
        let collections = self
            .collections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.snapshot()))
            .collect();
        Stats {
            total: self.total.snapshot(),
            collections,
        }
    }
}

/// The configuration of a [`Statistics`] store. Every store it wraps shares its counters.
#[derive(Clone, Debug, Default)]
pub struct StatisticsLayer {
    registry: Arc<Registry>,
}

impl StatisticsLayer {
    /// A layer with fresh counters.
    ///
    /// ```
    /// let layer = kv_layers::statistics::StatisticsLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of the counters of every store this layer wrapped.
    ///
    /// ```
    /// let layer = kv_layers::statistics::StatisticsLayer::new();
    /// assert_eq!(layer.stats().total.hits, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        self.registry.snapshot()
    }
}

impl<S: KvStore> Layer<S> for StatisticsLayer {
    type Store = Statistics<S>;

    fn layer(&self, inner: S) -> Statistics<S> {
        Statistics {
            inner,
            registry: self.registry.clone(),
        }
    }
}

/// A store counting its operations; see [`StatisticsLayer`].
#[derive(Clone, Debug)]
pub struct Statistics<S> {
    inner: S,
    registry: Arc<Registry>,
}

impl<S: KvStore> Statistics<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::statistics::StatisticsLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(StatisticsLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::statistics::StatisticsLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(StatisticsLayer::new());
    /// assert!(store.stats().collections.is_empty());
    /// ```
    pub fn stats(&self) -> Stats {
        self.registry.snapshot()
    }

    /// Counts an operation's outcome: `ok` adds the counts it returns, an error adds one error.
    fn count<T>(
        &self,
        collection: Option<&str>,
        result: Result<T>,
        ok: impl FnOnce(&T) -> Counts,
    ) -> Result<T> {
        let c = collection.map(|c| self.inner.info().resolve(c));
        match &result {
            Ok(v) => self.registry.add(c, ok(v)),
            Err(_) => self.registry.add(c, [(errors, 1), NONE]),
        }
        result
    }
}

/// One counter of [`Counters`].
type Field = fn(&Counters) -> &AtomicU64;

/// What one operation adds: at most two counters (unused slots add 0).
type Counts = [(Field, u64); 2];

/// An unused slot of [`Counts`].
const NONE: (Field, u64) = (hits, 0);

fn errors(c: &Counters) -> &AtomicU64 {
    &c.errors
}
fn hits(c: &Counters) -> &AtomicU64 {
    &c.hits
}
fn misses(c: &Counters) -> &AtomicU64 {
    &c.misses
}
fn puts(c: &Counters) -> &AtomicU64 {
    &c.puts
}
fn deletes(c: &Counters) -> &AtomicU64 {
    &c.deletes
}
fn delete_misses(c: &Counters) -> &AtomicU64 {
    &c.delete_misses
}

impl<S: KvStore> KvStore for Statistics<S> {
    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let r = self.inner.get_opts(collection, key, opts).await;
        self.count(Some(collection), r, |e| {
            [if e.is_some() { (hits, 1) } else { (misses, 1) }, NONE]
        })
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let r = self.inner.get_many_opts(collection, keys, opts).await;
        self.count(Some(collection), r, |v| {
            let found = v.iter().filter(|e| e.is_some()).count() as u64;
            [(hits, found), (misses, v.len() as u64 - found)]
        })
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let r = self.inner.put_opts(collection, key, value, opts).await;
        self.count(Some(collection), r, |_| [(puts, 1), NONE])
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let r = self.inner.put_many_opts(collection, entries, opts).await;
        self.count(Some(collection), r, |_| {
            [(puts, entries.len() as u64), NONE]
        })
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let r = self.inner.delete_opts(collection, key, opts).await;
        self.count(Some(collection), r, |&d| {
            [if d { (deletes, 1) } else { (delete_misses, 1) }, NONE]
        })
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let r = self.inner.delete_many_opts(collection, keys, opts).await;
        self.count(Some(collection), r, |&n| {
            [
                (deletes, n),
                (delete_misses, (keys.len() as u64).saturating_sub(n)),
            ]
        })
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let r = self.inner.ttl_opts(collection, key, opts).await;
        self.count(Some(collection), r, |t| {
            [if t.is_some() { (hits, 1) } else { (misses, 1) }, NONE]
        })
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let r = self.inner.scan_opts(collection, opts).await;
        self.count(Some(collection), r, |_| [NONE; 2])
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let r = self.inner.collections_opts(opts).await;
        self.count(None, r, |_| [NONE; 2])
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let r = self.inner.clear_opts(collection, opts).await;
        self.count(Some(collection), r, |&n| [(deletes, n), NONE])
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let r = self.inner.destroy_opts(opts).await;
        self.count(None, r, |_| [NONE; 2])
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let r = self.inner.cull_opts(opts).await;
        self.count(None, r, |_| [NONE; 2])
    }

    forward!(inner; info, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    #[tokio::test]
    async fn counts_per_collection_and_in_total() {
        let layer = StatisticsLayer::new();
        let s = MemoryStore::new().with(layer.clone());
        s.put("a", "k", &1).await.unwrap();
        s.put_many("b", &[("x", 1), ("y", 2)]).await.unwrap();
        s.get::<i32>("a", "k").await.unwrap();
        s.get::<i32>("a", "nope").await.unwrap();
        s.get_many::<i32>("b", &["x", "y", "z"]).await.unwrap();
        assert!(s.delete("a", "k").await.unwrap());
        assert!(!s.delete("a", "k").await.unwrap());
        assert_eq!(s.clear("b").await.unwrap(), 2);
        s.put("", "k", &1).await.unwrap();
        let bad = s
            .put_with_ttl("a", "k", &1, std::time::Duration::ZERO)
            .await;
        assert!(bad.is_err());

        let st = layer.stats();
        assert_eq!(st, s.stats());
        let a = st.collections["a"];
        assert_eq!(
            (
                a.hits,
                a.misses,
                a.puts,
                a.deletes,
                a.delete_misses,
                a.errors
            ),
            (1, 1, 1, 1, 1, 1)
        );
        let b = st.collections["b"];
        assert_eq!((b.hits, b.misses, b.puts, b.deletes), (2, 1, 2, 2));
        assert_eq!(st.collections["default_collection"].puts, 1);
        assert_eq!(st.total.puts, 4);
        assert_eq!(st.total.hits, 3);
        assert_eq!(b.hit_ratio(), Some(2.0 / 3.0));
    }
}
