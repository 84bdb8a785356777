//! Stores every collection in one backing collection, for backends where collections are
//! expensive or fixed (one table, one index, one bucket).
//!
//! Entry `(c, k)` is stored as key `<c>__<k>` of the backing collection (the empty collection
//! is first resolved to the default one), as py-key-value's `SingleCollectionWrapper` does —
//! but collision-free: in the collection part `%` becomes `%25`, and an `_` that is followed
//! by `_` or ends the name becomes `%5F`, so the first `"__"` always ends the collection
//! (`("a", "b__c")` and `("a__b", "c")` stay apart). Names without `%`, `"__"` or a trailing
//! `_` are stored exactly as py-key-value stores them.
//!
//! Scans, `collections()` and `clear` are translated: `collections()` scans the whole backing
//! collection (its cost grows with the number of entries), `clear(c)` deletes `c`'s keys page
//! by page, `destroy` clears the backing collection.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::single_collection::SingleCollectionLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let backend = MemoryStore::new();
//! let store = backend.clone().with(SingleCollectionLayer::new("single"));
//! store.put("c3", "k", &1).await?;
//! assert_eq!(backend.get::<i32>("single", "c3__k").await?, Some(1));
//! assert_eq!(store.collections().await?, vec!["c3".to_owned()]);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, DeleteOptions, DestroyOptions, Entry, Error, GetOptions,
    KvStore, Layer, PutManyOptions, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo,
    Ttl,
};

use crate::util;

/// The configuration of a [`SingleCollection`] store: the backing collection and,
/// optionally, the name of the default collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleCollectionLayer {
    collection: String,
    default_collection: Option<String>,
}

impl SingleCollectionLayer {
    /// Every entry goes to the backing collection `collection` of the inner store.
    ///
    /// ```
    /// let layer = kv_layers::single_collection::SingleCollectionLayer::new("kv");
    /// # let _ = layer;
    /// ```
    pub fn new(collection: impl Into<String>) -> Self {
        SingleCollectionLayer {
            collection: collection.into(),
            default_collection: None,
        }
    }

    /// The collection an empty name means (default: the inner store's default collection).
    ///
    /// ```
    /// use kv_layers::single_collection::SingleCollectionLayer;
    /// let layer = SingleCollectionLayer::new("kv").default_collection("main");
    /// # let _ = layer;
    /// ```
    pub fn default_collection(mut self, name: impl Into<String>) -> Self {
        self.default_collection = Some(name.into());
        self
    }
}

impl<S: KvStore> Layer<S> for SingleCollectionLayer {
    type Store = SingleCollection<S>;

    fn layer(&self, inner: S) -> SingleCollection<S> {
        let mut info = inner.info().clone();
        if let Some(d) = &self.default_collection {
            info = info.with_default_collection(d.clone());
        }
        let backing: Arc<str> = inner.info().resolve(&self.collection).into();
        let cap = &mut info.capability;
        cap.list_collections = cap.scan;
        cap.destroy = cap.clear;
        cap.clear = cap.scan;
        SingleCollection {
            inner,
            backing,
            info,
        }
    }
}

/// A store keeping every collection in one backing collection; see [`SingleCollectionLayer`].
#[derive(Clone, Debug)]
pub struct SingleCollection<S> {
    inner: S,
    backing: Arc<str>,
    info: StoreInfo,
}

impl<S> SingleCollection<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::single_collection::SingleCollectionLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(SingleCollectionLayer::new("kv"));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `escape(collection) + "__"`.
    fn ns(&self, collection: &str) -> String {
        util::namespace(self.info.resolve(collection))
    }

    /// Names the caller's collection and key, not the stored ones, in an error.
    fn fix(&self, err: Error) -> Error {
        util::rename_context(err, |c, k| {
            if c != Some(&*self.backing) {
                return None;
            }
            match k {
                Some(k) => {
                    let (c, k) = util::split_joined(k)?;
                    Some((Some(c), Some(k.to_owned())))
                }
                None => Some((None, None)),
            }
        })
    }
}

fn join(ns: &str, key: &str) -> String {
    let mut out = String::with_capacity(ns.len() + key.len());
    out.push_str(ns);
    out.push_str(key);
    out
}

fn refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

impl<S: KvStore> KvStore for SingleCollection<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let k = join(&self.ns(collection), key);
        self.inner
            .get_opts(&self.backing, &k, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let ns = self.ns(collection);
        let keys: Vec<String> = keys.iter().map(|k| join(&ns, k)).collect();
        self.inner
            .get_many_opts(&self.backing, &refs(&keys), opts)
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
        let k = join(&self.ns(collection), key);
        self.inner
            .put_opts(&self.backing, &k, value, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let ns = self.ns(collection);
        let keys: Vec<String> = entries.iter().map(|(k, _)| join(&ns, k)).collect();
        let entries: Vec<(&str, Bytes)> = keys
            .iter()
            .zip(entries)
            .map(|(k, (_, v))| (k.as_str(), v.clone()))
            .collect();
        self.inner
            .put_many_opts(&self.backing, &entries, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let k = join(&self.ns(collection), key);
        self.inner
            .delete_opts(&self.backing, &k, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let ns = self.ns(collection);
        let keys: Vec<String> = keys.iter().map(|k| join(&ns, k)).collect();
        self.inner
            .delete_many_opts(&self.backing, &refs(&keys), opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let k = join(&self.ns(collection), key);
        self.inner
            .ttl_opts(&self.backing, &k, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let ns = self.ns(collection);
        let prefix = join(&ns, &opts.prefix);
        let page = self
            .inner
            .scan_opts(&self.backing, opts.with_prefix(prefix).without_key_filter())
            .await
            .map_err(|e| self.fix(e))?;
        let items = page
            .items
            .into_iter()
            .filter_map(|item| {
                let key = item.key.strip_prefix(ns.as_str())?.to_owned();
                Some(ScanItem::new(key, item.entry))
            })
            .collect();
        Ok(ScanPage::new(items, page.cursor))
    }

    async fn collections_opts(&self, _opts: CollectionsOptions) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        let mut cursor = None;
        loop {
            let page = self
                .inner
                .scan_opts(
                    &self.backing,
                    ScanOptions::default().keys_only().with_cursor(cursor),
                )
                .await?;
            for item in &page.items {
                if let Some((c, _)) = util::split_joined(&item.key) {
                    names.insert(c);
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(names.into_iter().collect()),
            }
        }
    }

    async fn clear_opts(&self, collection: &str, _opts: ClearOptions) -> Result<u64> {
        util::clear_prefix(&self.inner, &self.backing, &self.ns(collection))
            .await
            .map_err(|e| self.fix(e))
    }

    async fn destroy_opts(&self, _opts: DestroyOptions) -> Result<()> {
        self.inner
            .clear_opts(&self.backing, ClearOptions::default())
            .await?;
        Ok(())
    }

    forward!(inner; cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::keys;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    #[tokio::test]
    async fn lookalike_pairs_do_not_collide() {
        let backend = MemoryStore::new();
        let s = backend.clone().with(SingleCollectionLayer::new("single"));
        let pairs = [
            ("a", "b__c"),
            ("a__b", "c"),
            ("a_", "_b"),
            ("a", "__b"),
            ("%", "x"),
        ];
        for (i, (c, k)) in pairs.iter().enumerate() {
            s.put(c, k, &i).await.unwrap();
        }
        for (i, (c, k)) in pairs.iter().enumerate() {
            assert_eq!(s.get::<usize>(c, k).await.unwrap(), Some(i), "{c:?}/{k:?}");
        }
        assert_eq!(keys(&backend, "single").await.len(), pairs.len());
        let mut listed = s.collections().await.unwrap();
        listed.sort();
        assert_eq!(listed, vec!["%", "a", "a_", "a__b"]);
        let mut a = keys(&s, "a").await;
        a.sort();
        assert_eq!(a, vec!["__b", "b__c"]);
        assert_eq!(s.clear("a").await.unwrap(), 2);
        assert_eq!(s.get::<usize>("a__b", "c").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn stored_form_matches_py_key_value() {
        let backend = MemoryStore::new();
        let s = backend.clone().with(SingleCollectionLayer::new("single"));
        s.put("c3", "k", &1).await.unwrap();
        s.put("", "d", &1).await.unwrap();
        assert_eq!(
            keys(&backend, "single").await,
            vec!["c3__k", "default_collection__d"]
        );
    }

    #[tokio::test]
    async fn errors_name_the_callers_collection_and_key() {
        let s = MemoryStore::new().with(SingleCollectionLayer::new("single"));
        let err = s
            .put_with_ttl("users", "alice", &1, std::time::Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.collection(), Some("users"));
        assert_eq!(err.key(), Some("alice"));
    }

    #[tokio::test]
    async fn destroy_clears_only_the_backing_collection() {
        let backend = MemoryStore::new();
        backend.put("other", "k", &1).await.unwrap();
        let s = backend.clone().with(SingleCollectionLayer::new("single"));
        s.put("c", "k", &1).await.unwrap();
        s.destroy().await.unwrap();
        assert!(s.collections().await.unwrap().is_empty());
        assert_eq!(backend.get::<i32>("other", "k").await.unwrap(), Some(1));
    }
}
