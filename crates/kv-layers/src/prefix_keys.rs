//! Puts every key under a namespace prefix: `key` is stored as `<prefix>__<key>`.
//!
//! Several applications can then share one store (even one collection) without seeing each
//! other's keys: scans only list this prefix's keys (with the prefix stripped),
//! `collections()` only lists collections holding at least one of them, `clear` and
//! `destroy` only remove them.
//!
//! The stored form is py-key-value's `PrefixKeysWrapper` form (`pk__k`) for every prefix
//! without `%`, `"__"` or a trailing `_`; in such a prefix, `%` becomes `%25` and those `_`
//! become `%5F`, so no two prefixes can ever claim the same stored key (`a` + `b__k` and
//! `a__b` + `k` stay apart).
//!
//! ```
//! use futures_util::TryStreamExt;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::prefix_keys::PrefixKeysLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let shared = MemoryStore::new();
//! let app = shared.clone().with(PrefixKeysLayer::new("app"));
//! app.put("users", "alice", &1).await?;
//! assert_eq!(shared.get::<i32>("users", "app__alice").await?, Some(1));
//! assert_eq!(app.keys("users").try_collect::<Vec<_>>().await?, vec!["alice".to_owned()]);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, DeleteOptions, DestroyOptions, Entry, Error, GetOptions,
    KvStore, Layer, PutManyOptions, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo,
    Ttl,
};

use crate::util;

/// The configuration of a [`PrefixKeys`] store: the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixKeysLayer {
    prefix: String,
}

impl PrefixKeysLayer {
    /// Keys are stored as `<prefix>__<key>`.
    ///
    /// ```
    /// let layer = kv_layers::prefix_keys::PrefixKeysLayer::new("tenant-42");
    /// # let _ = layer;
    /// ```
    pub fn new(prefix: impl Into<String>) -> Self {
        PrefixKeysLayer {
            prefix: prefix.into(),
        }
    }
}

impl<S: KvStore> Layer<S> for PrefixKeysLayer {
    type Store = PrefixKeys<S>;

    fn layer(&self, inner: S) -> PrefixKeys<S> {
        let ns: Arc<str> = util::namespace(&self.prefix).into();
        let mut info = inner.info().clone();
        let cap = &mut info.capability;
        cap.max_key_len = util::shrink(cap.max_key_len, ns.len());
        // Listing collections means probing each one for this prefix's keys.
        cap.list_collections = cap.list_collections && cap.scan;
        cap.clear = cap.scan;
        cap.destroy = cap.scan && cap.list_collections;
        PrefixKeys { inner, ns, info }
    }
}

/// A store whose keys live under a prefix; see [`PrefixKeysLayer`].
#[derive(Clone, Debug)]
pub struct PrefixKeys<S> {
    inner: S,
    /// `escape(prefix) + "__"`.
    ns: Arc<str>,
    info: StoreInfo,
}

impl<S> PrefixKeys<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::prefix_keys::PrefixKeysLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(PrefixKeysLayer::new("app"));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.ns.len() + key.len());
        k.push_str(&self.ns);
        k.push_str(key);
        k
    }

    fn keys(&self, keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| self.key(k)).collect()
    }

    /// Names the caller's key, not the stored one, in an error.
    fn fix(&self, err: Error) -> Error {
        util::rename_context(err, |c, k| {
            let key = k?.strip_prefix(&*self.ns)?;
            Some((c.map(str::to_owned), Some(key.to_owned())))
        })
    }
}

fn refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

impl<S: KvStore> KvStore for PrefixKeys<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        self.inner
            .get_opts(collection, &self.key(key), opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let keys = self.keys(keys);
        self.inner
            .get_many_opts(collection, &refs(&keys), opts)
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
        self.inner
            .put_opts(collection, &self.key(key), value, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let keys: Vec<String> = entries.iter().map(|(k, _)| self.key(k)).collect();
        let entries: Vec<(&str, Bytes)> = keys
            .iter()
            .zip(entries)
            .map(|(k, (_, v))| (k.as_str(), v.clone()))
            .collect();
        self.inner
            .put_many_opts(collection, &entries, opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        self.inner
            .delete_opts(collection, &self.key(key), opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let keys = self.keys(keys);
        self.inner
            .delete_many_opts(collection, &refs(&keys), opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        self.inner
            .ttl_opts(collection, &self.key(key), opts)
            .await
            .map_err(|e| self.fix(e))
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let prefix = self.key(&opts.prefix);
        let page = self
            .inner
            .scan_opts(collection, opts.with_prefix(prefix).without_key_filter())
            .await
            .map_err(|e| self.fix(e))?;
        let items = page
            .items
            .into_iter()
            .filter_map(|item| {
                let key = item.key.strip_prefix(&*self.ns)?.to_owned();
                Some(ScanItem::new(key, item.entry))
            })
            .collect();
        Ok(ScanPage::new(items, page.cursor))
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for c in self.inner.collections_opts(opts).await? {
            if util::has_prefix(&self.inner, &c, &self.ns).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn clear_opts(&self, collection: &str, _opts: ClearOptions) -> Result<u64> {
        util::clear_prefix(&self.inner, collection, &self.ns).await
    }

    async fn destroy_opts(&self, _opts: DestroyOptions) -> Result<()> {
        // Only this prefix's keys: the collections may be shared with other prefixes.
        for c in self
            .inner
            .collections_opts(CollectionsOptions::default())
            .await?
        {
            util::clear_prefix(&self.inner, &c, &self.ns).await?;
        }
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
    async fn prefixes_are_isolated_everywhere() {
        let shared = MemoryStore::new();
        let a = shared.clone().with(PrefixKeysLayer::new("a"));
        let ab = shared.clone().with(PrefixKeysLayer::new("a__b"));
        a.put("c", "b__k", &1).await.unwrap();
        ab.put("c", "k", &2).await.unwrap();
        ab.put("only-ab", "k", &3).await.unwrap();
        shared.put("c", "plain", &4).await.unwrap();

        assert_eq!(a.get::<i32>("c", "b__k").await.unwrap(), Some(1));
        assert_eq!(ab.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert_eq!(keys(&a, "c").await, vec!["b__k".to_owned()]);
        assert_eq!(keys(&ab, "c").await, vec!["k".to_owned()]);
        assert_eq!(a.collections().await.unwrap(), vec!["c".to_owned()]);
        let mut listed = ab.collections().await.unwrap();
        listed.sort();
        assert_eq!(listed, vec!["c".to_owned(), "only-ab".to_owned()]);

        assert_eq!(a.clear("c").await.unwrap(), 1);
        assert_eq!(ab.get::<i32>("c", "k").await.unwrap(), Some(2));
        ab.destroy().await.unwrap();
        assert_eq!(shared.get::<i32>("c", "plain").await.unwrap(), Some(4));
        assert_eq!(ab.collections().await.unwrap(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn stored_form_matches_py_key_value() {
        let shared = MemoryStore::new();
        let s = shared.clone().with(PrefixKeysLayer::new("pk"));
        s.put("c2", "k", &1).await.unwrap();
        assert_eq!(keys(&shared, "c2").await, vec!["pk__k".to_owned()]);
    }

    #[tokio::test]
    async fn scan_prefixes_and_pages_are_translated() {
        let s = MemoryStore::new().with(PrefixKeysLayer::new("p"));
        for i in 0..10 {
            s.put("c", &format!("user:{i}"), &i).await.unwrap();
            s.put("c", &format!("order:{i}"), &i).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s
                .scan_opts(
                    "c",
                    ScanOptions::default()
                        .with_prefix("user:")
                        .with_page_size(3)
                        .with_cursor(cursor),
                )
                .await
                .unwrap();
            seen.extend(page.items.into_iter().map(|i| i.key));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = (0..10).map(|i| format!("user:{i}")).collect();
        assert_eq!(seen, want);
    }
}
