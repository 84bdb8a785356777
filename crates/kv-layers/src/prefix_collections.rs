//! Puts every collection under a namespace prefix: collection `c` is stored as `<prefix>__c`.
//!
//! The empty collection is first resolved to the default collection, so it is stored as
//! `<prefix>__default_collection`, as py-key-value's `PrefixCollectionsWrapper` does.
//! `collections()` lists only this prefix's collections (prefix stripped); `destroy` clears
//! only them. A prefix is escaped like in [`prefix_keys`](crate::prefix_keys), so two
//! prefixes never share a collection.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::prefix_collections::PrefixCollectionsLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let shared = MemoryStore::new();
//! let app = shared.clone().with(PrefixCollectionsLayer::new("app"));
//! app.put("c1", "k", &1).await?;
//! assert_eq!(shared.get::<i32>("app__c1", "k").await?, Some(1));
//! assert_eq!(app.collections().await?, vec!["c1".to_owned()]);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, DeleteOptions, DestroyOptions, Entry, Error, GetOptions,
    KvStore, Layer, PutManyOptions, PutOptions, Result, ScanOptions, ScanPage, StoreInfo, Ttl,
};

use crate::util;

/// The configuration of a [`PrefixCollections`] store: the prefix and, optionally, the name
/// of the default collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixCollectionsLayer {
    prefix: String,
    default_collection: Option<String>,
}

impl PrefixCollectionsLayer {
    /// Collections are stored as `<prefix>__<collection>`.
    ///
    /// ```
    /// let layer = kv_layers::prefix_collections::PrefixCollectionsLayer::new("tenant-42");
    /// # let _ = layer;
    /// ```
    pub fn new(prefix: impl Into<String>) -> Self {
        PrefixCollectionsLayer {
            prefix: prefix.into(),
            default_collection: None,
        }
    }

    /// The collection an empty name means (default: the inner store's default collection).
    ///
    /// ```
    /// use kv_layers::prefix_collections::PrefixCollectionsLayer;
    /// let layer = PrefixCollectionsLayer::new("app").default_collection("main");
    /// # let _ = layer;
    /// ```
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.default_collection = Some(name.into());
        self
    }
}

impl<S: KvStore> Layer<S> for PrefixCollectionsLayer {
    type Store = PrefixCollections<S>;

    fn layer(&self, inner: S) -> PrefixCollections<S> {
        let ns: Arc<str> = util::namespace(&self.prefix).into();
        let mut info = inner.info().clone();
        if let Some(d) = &self.default_collection {
            info = info.with_default_collection(d.clone());
        }
        let cap = &mut info.capability;
        cap.max_collection_len = util::shrink(cap.max_collection_len, ns.len());
        cap.destroy = cap.list_collections && cap.clear;
        PrefixCollections { inner, ns, info }
    }
}

/// A store whose collections live under a prefix; see [`PrefixCollectionsLayer`].
#[derive(Clone, Debug)]
pub struct PrefixCollections<S> {
    inner: S,
    /// `escape(prefix) + "__"`.
    ns: Arc<str>,
    info: StoreInfo,
}

impl<S> PrefixCollections<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::prefix_collections::PrefixCollectionsLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(PrefixCollectionsLayer::new("app"));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn coll(&self, collection: &str) -> String {
        let c = self.info.resolve(collection);
        let mut out = String::with_capacity(self.ns.len() + c.len());
        out.push_str(&self.ns);
        out.push_str(c);
        out
    }

    /// Names the caller's collection, not the stored one, in an error.
    fn fix(&self, err: Error) -> Error {
        util::rename_context(err, |c, k| {
            let c = c?.strip_prefix(&*self.ns)?;
            Some((Some(c.to_owned()), k.map(str::to_owned)))
        })
    }
}

impl<S: KvStore> KvStore for PrefixCollections<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let c = self.coll(collection);
        self.inner
            .get_opts(&c, key, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let c = self.coll(collection);
        self.inner
            .get_many_opts(&c, keys, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let c = self.coll(collection);
        self.inner
            .put_opts(&c, key, value, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let c = self.coll(collection);
        self.inner
            .put_many_opts(&c, entries, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let c = self.coll(collection);
        self.inner
            .delete_opts(&c, key, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let c = self.coll(collection);
        self.inner
            .delete_many_opts(&c, keys, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let c = self.coll(collection);
        self.inner
            .ttl_opts(&c, key, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let c = self.coll(collection);
        self.inner
            .scan_opts(&c, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let all = self.inner.collections_opts(opts).await?;
        Ok(all
            .into_iter()
            .filter_map(|c| c.strip_prefix(&*self.ns).map(str::to_owned))
            .collect())
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let c = self.coll(collection);
        self.inner
            .clear_opts(&c, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn destroy_opts(&self, _opts: DestroyOptions) -> Result<()> {
        // Only this prefix's collections: the store may hold other prefixes.
        for c in self
            .inner
            .collections_opts(CollectionsOptions::default())
            .await?
        {
            if c.starts_with(&*self.ns) {
                self.inner.clear_opts(&c, ClearOptions::default()).await?;
            }
        }
        Ok(())
    }

    forward!(inner; cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    #[tokio::test]
    async fn stored_form_matches_py_key_value() {
        let shared = MemoryStore::new();
        let s = shared.clone().with(PrefixCollectionsLayer::new("app"));
        s.put("c1", "p", &1).await.unwrap();
        s.put("", "p", &1).await.unwrap();
        let mut listed = shared.collections().await.unwrap();
        listed.sort();
        assert_eq!(listed, vec!["app__c1", "app__default_collection"]);
    }

    #[tokio::test]
    async fn prefixes_are_isolated() {
        let shared = MemoryStore::new();
        let a = shared.clone().with(PrefixCollectionsLayer::new("a"));
        let ab = shared.clone().with(PrefixCollectionsLayer::new("a__b"));
        a.put("b__c", "k", &1).await.unwrap();
        ab.put("c", "k", &2).await.unwrap();
        shared.put("plain", "k", &3).await.unwrap();
        assert_eq!(a.get::<i32>("b__c", "k").await.unwrap(), Some(1));
        assert_eq!(ab.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert_eq!(a.collections().await.unwrap(), vec!["b__c".to_owned()]);
        assert_eq!(ab.collections().await.unwrap(), vec!["c".to_owned()]);
        a.destroy().await.unwrap();
        assert_eq!(a.get::<i32>("b__c", "k").await.unwrap(), None);
        assert_eq!(ab.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert_eq!(shared.get::<i32>("plain", "k").await.unwrap(), Some(3));
    }

    #[tokio::test]
    async fn errors_name_the_callers_collection() {
        let s = MemoryStore::new().with(PrefixCollectionsLayer::new("app"));
        let err = s
            .put_with_ttl("users", "alice", &1, std::time::Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.collection(), Some("users"));
        assert_eq!(err.key(), Some("alice"));
    }

    #[tokio::test]
    async fn own_default_collection() {
        let shared = MemoryStore::new();
        let s = shared
            .clone()
            .with(PrefixCollectionsLayer::new("app").default_collection("main"));
        assert_eq!(s.info().default_collection, "main");
        s.put("", "k", &1).await.unwrap();
        assert_eq!(shared.get::<i32>("app__main", "k").await.unwrap(), Some(1));
    }
}
