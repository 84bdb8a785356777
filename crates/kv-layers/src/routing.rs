//! Routes collections to different stores: each named collection goes to its store, every
//! other one to the default store (the one the layer wraps).
//!
//! Routes are [`DynStore`]s, so one stack can route to stores of different types (memory for
//! sessions, a database for users). Names are compared after resolving the empty name to the
//! default collection. `collections()` lists the default store's collections that are not
//! routed elsewhere, plus each routed collection that exists on its store; `destroy` destroys
//! the default store and clears each routed collection on its store (a route store may be
//! shared); `cull` and `close` reach every store once. The capability is what every store can
//! do (the intersection).
//!
//! ```
//! use std::sync::Arc;
//! use kv_core::{DynStore, KvStoreExt};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::routing::RoutingLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let sessions = MemoryStore::new();
//! let store = MemoryStore::new()
//!     .with(RoutingLayer::new().route("sessions", Arc::new(sessions.clone()) as DynStore));
//! store.put("sessions", "s1", &"token").await?;
//! assert_eq!(sessions.get::<String>("sessions", "s1").await?.as_deref(), Some("token"));
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, DynKvStore,
    DynStore, Entry, GetOptions, KvStore, Layer, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};

use crate::util;

/// The configuration of a [`Routing`] store: which collection goes where.
#[derive(Clone, Debug, Default)]
pub struct RoutingLayer {
    routes: Vec<(String, DynStore)>,
}

impl RoutingLayer {
    /// A layer without routes: everything goes to the default store.
    ///
    /// ```
    /// let layer = kv_layers::routing::RoutingLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `collection` (`""` means the default collection) to `store`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kv_core::DynStore;
    /// use kv_layers::routing::RoutingLayer;
    /// let cache: DynStore = Arc::new(kv_store_memory::MemoryStore::new());
    /// let layer = RoutingLayer::new().route("cache", cache);
    /// # let _ = layer;
    /// ```
    pub fn route(mut self, collection: impl Into<String>, store: DynStore) -> Self {
        self.routes.push((collection.into(), store));
        self
    }
}

impl<S: KvStore> Layer<S> for RoutingLayer {
    type Store = Routing<S>;

    fn layer(&self, inner: S) -> Routing<S> {
        let mut info = inner.info().clone();
        let mut routes = HashMap::new();
        for (c, store) in &self.routes {
            info.capability = util::intersect(info.capability, store.info().capability);
            routes.insert(inner.info().resolve(c).to_owned(), store.clone());
        }
        let mut distinct: Vec<DynStore> = Vec::new();
        for store in routes.values() {
            if !distinct.iter().any(|d| same(d, store)) {
                distinct.push(store.clone());
            }
        }
        Routing {
            inner,
            shared: Arc::new(Shared {
                routes,
                distinct,
                info,
            }),
        }
    }
}

fn same(a: &DynStore, b: &DynStore) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

#[derive(Debug)]
struct Shared {
    routes: HashMap<String, DynStore>,
    /// Each route store once.
    distinct: Vec<DynStore>,
    info: StoreInfo,
}

/// A store routing collections to other stores; see [`RoutingLayer`].
#[derive(Clone, Debug)]
pub struct Routing<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// Where one operation goes.
enum Target<'a, S> {
    Default(&'a S),
    Route(&'a DynStore),
}

/// Runs `$op` on the store `$target` names.
macro_rules! on {
    ($target:expr, |$s:ident| $op:expr) => {
        match $target {
            Target::Default($s) => $op.await,
            Target::Route(r) => {
                let $s: &dyn DynKvStore = &**r;
                $op.await
            }
        }
    };
}

impl<S: KvStore> Routing<S> {
    /// The default store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::routing::RoutingLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(RoutingLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn target(&self, collection: &str) -> Target<'_, S> {
        let c = self.inner.info().resolve(collection);
        match self.shared.routes.get(c) {
            Some(r) => Target::Route(r),
            None => Target::Default(&self.inner),
        }
    }
}

impl<S: KvStore> KvStore for Routing<S> {
    fn info(&self) -> &StoreInfo {
        &self.shared.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        on!(self.target(collection), |s| s
            .get_opts(collection, key, opts))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        on!(self.target(collection), |s| s
            .get_many_opts(collection, keys, opts))
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        on!(self.target(collection), |s| s
            .put_opts(collection, key, value, opts))
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        on!(self.target(collection), |s| s
            .put_many_opts(collection, entries, opts))
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        on!(self.target(collection), |s| s
            .delete_opts(collection, key, opts))
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        on!(self.target(collection), |s| s
            .delete_many_opts(collection, keys, opts))
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        on!(self.target(collection), |s| s
            .ttl_opts(collection, key, opts))
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        on!(self.target(collection), |s| s.scan_opts(collection, opts))
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let routes = &self.shared.routes;
        let mut out: Vec<String> = self
            .inner
            .collections_opts(opts.clone())
            .await?
            .into_iter()
            .filter(|c| !routes.contains_key(c))
            .collect();
        for store in &self.shared.distinct {
            for c in store.collections_opts(opts.clone()).await? {
                if routes.get(&c).is_some_and(|r| same(r, store)) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        on!(self.target(collection), |s| s.clear_opts(collection, opts))
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        self.inner.destroy_opts(opts).await?;
        for (c, store) in &self.shared.routes {
            store.clear_opts(c, ClearOptions::default()).await?;
        }
        Ok(())
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let mut n = self.inner.cull_opts(opts.clone()).await?;
        for store in &self.shared.distinct {
            n += store.cull_opts(opts.clone()).await?;
        }
        Ok(n)
    }

    async fn close(&self) -> Result<()> {
        let mut result = self.inner.close().await;
        for store in &self.shared.distinct {
            result = result.and(store.close().await);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    #[tokio::test]
    async fn collections_go_to_their_store() {
        let default = MemoryStore::new();
        let other = MemoryStore::new();
        let dyn_other: DynStore = Arc::new(other.clone());
        let s = default.clone().with(
            RoutingLayer::new()
                .route("a", dyn_other.clone())
                .route("", dyn_other),
        );
        s.put("a", "k", &1).await.unwrap();
        s.put("", "k", &2).await.unwrap();
        s.put("b", "k", &3).await.unwrap();
        assert_eq!(other.get::<i32>("a", "k").await.unwrap(), Some(1));
        assert_eq!(
            other.get::<i32>("default_collection", "k").await.unwrap(),
            Some(2)
        );
        assert_eq!(default.get::<i32>("b", "k").await.unwrap(), Some(3));
        // Data under a routed name in the default store is unreachable, and not listed.
        default.put("a", "stale", &0).await.unwrap();
        other.put("unrouted", "k", &0).await.unwrap();
        let mut listed = s.collections().await.unwrap();
        listed.sort();
        assert_eq!(listed, vec!["a", "b", "default_collection"]);
        s.destroy().await.unwrap();
        assert!(s.collections().await.unwrap().is_empty());
        assert_eq!(other.get::<i32>("unrouted", "k").await.unwrap(), Some(0));
    }
}
