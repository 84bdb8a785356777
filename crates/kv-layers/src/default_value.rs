//! Returns a default value for misses, for every collection or per collection.
//!
//! A `get` (or a slot of `get_many`) that finds nothing returns the default as an entry, with
//! the default TTL as its expiry if one is set, and `ttl` reports that TTL — as py-key-value's
//! `DefaultValueWrapper` does. The default is never written: scans, `collections`, deletes and
//! counts see only stored entries. A per-collection default wins over the global one; the
//! empty collection name means the default collection.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::default_value::DefaultValueLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let layer = DefaultValueLayer::new().collection("settings", &r#"{"theme":"light"}"#[..]);
//! let store = MemoryStore::new().with(layer);
//! let theme: Option<serde_json::Value> = store.get("settings", "alice").await?;
//! assert_eq!(theme.unwrap()["theme"], "light");
//! assert_eq!(store.get::<i32>("other", "alice").await?, None);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv_core::{Entry, GetOptions, KvStore, Layer, Result, Timestamp, Ttl, ttl};

/// The configuration of a [`DefaultValue`] store: the defaults and their TTL.
#[derive(Clone, Debug, Default)]
pub struct DefaultValueLayer {
    global: Option<Bytes>,
    per_collection: HashMap<String, Bytes>,
    ttl: Option<Duration>,
}

impl DefaultValueLayer {
    /// A layer without defaults (add them with [`global`](Self::global) and
    /// [`collection`](Self::collection)).
    ///
    /// ```
    /// let layer = kv_layers::default_value::DefaultValueLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The default for every collection without its own.
    ///
    /// ```
    /// let layer = kv_layers::default_value::DefaultValueLayer::new().global(&b"0"[..]);
    /// # let _ = layer;
    /// ```
    pub fn global(mut self, value: impl Into<Bytes>) -> Self {
        self.global = Some(value.into());
        self
    }

    /// The default for one collection (`""` means the default collection).
    ///
    /// ```
    /// use kv_layers::default_value::DefaultValueLayer;
    /// let layer = DefaultValueLayer::new().collection("counters", &b"0"[..]);
    /// # let _ = layer;
    /// ```
    pub fn collection(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.per_collection.insert(name.into(), value.into());
        self
    }

    /// The TTL a default appears to have (its `expires_at` is now + ttl); without it, defaults
    /// never expire. Zero is treated as no TTL.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::default_value::DefaultValueLayer;
    /// let layer = DefaultValueLayer::new().global(&b"0"[..]).ttl(Duration::from_secs(60));
    /// # let _ = layer;
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl).filter(|d| !d.is_zero());
        self
    }
}

impl<S: KvStore> Layer<S> for DefaultValueLayer {
    type Store = DefaultValue<S>;

    fn layer(&self, inner: S) -> DefaultValue<S> {
        let info = inner.info().clone();
        // Resolve "" once, so lookups compare resolved names.
        let per_collection = self
            .per_collection
            .iter()
            .map(|(c, v)| (info.resolve(c).to_owned(), v.clone()))
            .collect();
        DefaultValue {
            inner,
            defaults: Arc::new(Defaults {
                global: self.global.clone(),
                per_collection,
                ttl: self.ttl,
            }),
        }
    }
}

#[derive(Debug)]
struct Defaults {
    global: Option<Bytes>,
    per_collection: HashMap<String, Bytes>,
    ttl: Option<Duration>,
}

/// A store returning defaults for misses; see [`DefaultValueLayer`].
#[derive(Clone, Debug)]
pub struct DefaultValue<S> {
    inner: S,
    defaults: Arc<Defaults>,
}

impl<S: KvStore> DefaultValue<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::default_value::DefaultValueLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(DefaultValueLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn default_for(&self, collection: &str) -> Option<&Bytes> {
        let c = self.inner.info().resolve(collection);
        self.defaults
            .per_collection
            .get(c)
            .or(self.defaults.global.as_ref())
    }

    fn default_entry(&self, collection: &str) -> Option<Entry> {
        let value = self.default_for(collection)?.clone();
        // A TTL too large to express makes the default never expire rather than fail a read.
        let expires_at = ttl::expires_at(Timestamp::now(), self.defaults.ttl).unwrap_or(None);
        Some(Entry::new(value).with_expires_at(expires_at))
    }
}

impl<S: KvStore> KvStore for DefaultValue<S> {
    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let found = self.inner.get_opts(collection, key, opts).await?;
        Ok(found.or_else(|| self.default_entry(collection)))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let mut found = self.inner.get_many_opts(collection, keys, opts).await?;
        if found.iter().any(Option::is_none) {
            if let Some(default) = self.default_entry(collection) {
                for slot in found.iter_mut().filter(|s| s.is_none()) {
                    *slot = Some(default.clone());
                }
            }
        }
        Ok(found)
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let found = self.inner.ttl_opts(collection, key, opts).await?;
        Ok(found.or_else(|| {
            self.default_for(collection)?;
            Some(self.defaults.ttl.map_or(Ttl::Never, Ttl::Remaining))
        }))
    }

    forward!(inner; info, put_opts, put_many_opts, delete_opts, delete_many_opts, scan_opts,
        collections_opts, clear_opts, destroy_opts, cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::keys;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    #[tokio::test]
    async fn collection_default_wins_over_global() {
        let s = MemoryStore::new().with(
            DefaultValueLayer::new()
                .global(&b"0"[..])
                .collection("", &b"1"[..]),
        );
        assert_eq!(s.get::<i32>("any", "k").await.unwrap(), Some(0));
        assert_eq!(s.get::<i32>("", "k").await.unwrap(), Some(1));
        assert_eq!(
            s.get::<i32>("default_collection", "k").await.unwrap(),
            Some(1)
        );
        s.put("any", "k", &5).await.unwrap();
        assert_eq!(s.get::<i32>("any", "k").await.unwrap(), Some(5));
        assert_eq!(
            s.get_many::<i32>("any", &["k", "nope"]).await.unwrap(),
            vec![Some(5), Some(0)]
        );
    }

    #[tokio::test]
    async fn defaults_are_never_written_or_listed() {
        let memory = MemoryStore::new();
        let s = memory
            .clone()
            .with(DefaultValueLayer::new().global(&b"0"[..]));
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(0));
        assert!(keys(&s, "c").await.is_empty());
        assert!(!s.delete("c", "k").await.unwrap());
        assert!(s.collections().await.unwrap().is_empty());
        assert_eq!(memory.get::<i32>("c", "k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn default_ttl_is_reported() {
        let hour = Duration::from_secs(3600);
        let s = MemoryStore::new().with(DefaultValueLayer::new().global(&b"0"[..]).ttl(hour));
        assert_eq!(s.ttl("c", "k").await.unwrap(), Some(Ttl::Remaining(hour)));
        let e = s.get_entry("c", "k").await.unwrap().unwrap();
        assert!(e.expires_at.is_some());
        let never = MemoryStore::new().with(DefaultValueLayer::new().global(&b"0"[..]));
        assert_eq!(never.ttl("c", "k").await.unwrap(), Some(Ttl::Never));
        let none = MemoryStore::new().with(DefaultValueLayer::new());
        assert_eq!(none.ttl("c", "k").await.unwrap(), None);
    }
}
