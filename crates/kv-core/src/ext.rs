//! What every store offers for free: short names, typed values, dict-like helpers, streams.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::search::Filter;
use crate::{
    ClearOptions, Codec, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry,
    Error, ErrorKind, GetOptions, KvStore, Operation, PutOptions, Result, ScanItem, ScanOptions,
    Ttl, typed,
};

/// Convenience methods on every [`KvStore`] (stores never implement this trait).
///
/// Typed methods (`get::<T>`, `put`, ...) encode values as JSON; use
/// [`Collection`](crate::Collection) for another [`Codec`]. The dict-like methods (`len`,
/// `contains`, `pop`, `pop_item`, `update`, `equals`, `keys`/`values`/`items`) follow
/// spoonbill's semantics, without its bugs.
///
/// ```
/// # async fn demo(store: impl kv_core::KvStore) -> kv_core::Result<()> {
/// use kv_core::KvStoreExt;
/// use std::time::Duration;
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String }
///
/// store.put("users", "alice", &User { name: "Alice".into() }).await?;
/// let alice: Option<User> = store.get("users", "alice").await?;
/// assert_eq!(alice.unwrap().name, "Alice");
/// store.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(60)).await?;
/// assert!(store.contains("sessions", "s1").await?);
/// assert!(store.delete("users", "alice").await?);
/// # Ok(()) }
/// ```
pub trait KvStoreExt: KvStore {
    /// Reads and decodes a JSON value.
    fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        typed::get(self, Codec::Json, collection, key)
    }

    /// Reads the raw value.
    fn get_bytes(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Bytes>>> + Send {
        async move {
            Ok(self
                .get_opts(collection, key, GetOptions::default())
                .await?
                .map(|e| e.value))
        }
    }

    /// Reads the raw value with its metadata (expiry, version for compare-and-swap).
    fn get_entry(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        self.get_opts(collection, key, GetOptions::default())
    }

    /// Reads and decodes many JSON values; one slot per key, in order.
    fn get_many<T: DeserializeOwned>(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<T>>>> + Send {
        typed::get_many(self, Codec::Json, collection, keys)
    }

    /// Encodes a value as JSON and writes it (no expiry).
    fn put<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<()>> + Send {
        let encoded = Codec::Json.encode(value);
        async move {
            self.put_opts(collection, key, encoded?, PutOptions::default())
                .await
        }
    }

    /// Encodes a value as JSON and writes it with a time to live.
    fn put_with_ttl<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        let encoded = Codec::Json.encode(value);
        async move {
            self.put_opts(
                collection,
                key,
                encoded?,
                PutOptions::default().with_ttl(ttl),
            )
            .await
        }
    }

    /// Writes a raw value (no expiry).
    fn put_bytes(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Bytes>,
    ) -> impl Future<Output = Result<()>> + Send {
        self.put_opts(collection, key, value.into(), PutOptions::default())
    }

    /// Writes a JSON value only if no live entry exists; `Ok(false)` if one does.
    fn put_if_absent<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<bool>> + Send {
        let encoded = Codec::Json.encode(value);
        async move { typed::put_if_absent_bytes(self, collection, key, encoded?, None).await }
    }

    /// Encodes and writes many JSON values in one batch (no expiry).
    fn put_many<T: Serialize>(
        &self,
        collection: &str,
        entries: &[(&str, T)],
    ) -> impl Future<Output = Result<()>> + Send {
        let encoded = typed::encode_many(Codec::Json, entries);
        async move { typed::put_many_encoded(self, collection, encoded?, None).await }
    }

    /// Deletes an entry; `true` if a live entry was removed.
    fn delete(&self, collection: &str, key: &str) -> impl Future<Output = Result<bool>> + Send {
        self.delete_opts(collection, key, DeleteOptions::default())
    }

    /// Deletes many entries; returns how many live entries were removed.
    fn delete_many(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> impl Future<Output = Result<u64>> + Send {
        self.delete_many_opts(collection, keys, DeleteOptions::default())
    }

    /// The remaining lifetime; `None` if the entry does not exist.
    fn ttl(&self, collection: &str, key: &str) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        self.ttl_opts(collection, key, GetOptions::default())
    }

    /// True if a live entry exists.
    fn exists(&self, collection: &str, key: &str) -> impl Future<Output = Result<bool>> + Send {
        async move {
            Ok(self
                .ttl_opts(collection, key, GetOptions::default())
                .await?
                .is_some())
        }
    }

    /// Returns the stored JSON value, or computes, stores and returns it. With concurrent
    /// callers on a store with atomic if-absent puts, all of them return the one value that
    /// was stored first.
    fn get_or_insert_with<T, F, Fut>(
        &self,
        collection: &str,
        key: &str,
        make: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        typed::get_or_insert_with(self, Codec::Json, collection, key, None, make)
    }

    /// A stream over the items of a collection, page by page (see [`ScanOptions`]).
    fn scan<'a>(
        &'a self,
        collection: &'a str,
        opts: ScanOptions,
    ) -> impl Stream<Item = Result<ScanItem>> + Send + 'a {
        scan_stream(self, collection, opts)
    }

    /// A stream over the keys of a collection.
    fn keys<'a>(&'a self, collection: &'a str) -> impl Stream<Item = Result<String>> + Send + 'a {
        scan_stream(self, collection, ScanOptions::default().keys_only()).map(|r| r.map(|i| i.key))
    }

    /// A stream over the keys of a collection that start with `prefix`.
    fn keys_with_prefix<'a>(
        &'a self,
        collection: &'a str,
        prefix: &str,
    ) -> impl Stream<Item = Result<String>> + Send + 'a {
        let opts = ScanOptions::default().keys_only().with_prefix(prefix);
        scan_stream(self, collection, opts).map(|r| r.map(|i| i.key))
    }

    /// A stream over the decoded JSON values of a collection.
    fn values<'a, T: DeserializeOwned + 'a>(
        &'a self,
        collection: &'a str,
    ) -> impl Stream<Item = Result<T>> + Send + 'a {
        self.items::<T>(collection).map(|r| r.map(|(_, v)| v))
    }

    /// A stream over the `(key, decoded JSON value)` pairs of a collection.
    fn items<'a, T: DeserializeOwned + 'a>(
        &'a self,
        collection: &'a str,
    ) -> impl Stream<Item = Result<(String, T)>> + Send + 'a {
        scan_stream(self, collection, ScanOptions::default()).map(move |r| {
            let item = r?;
            let entry = item.entry.ok_or_else(|| {
                Error::new(
                    ErrorKind::Backend,
                    "store returned a scan item without its entry",
                )
            })?;
            let v = Codec::Json
                .decode(&entry.value)
                .map_err(|e| e.with_collection(collection).with_key(&item.key))?;
            Ok((item.key, v))
        })
    }

    /// A stream over the entries of a collection that match `filter` (see [`search`](crate::search)):
    /// keys by glob or regex, values by conditions on their JSON fields. Take as many as you
    /// need — a limit counts matches. The filter is pushed down to stores that can evaluate
    /// it natively and checked again here, so results are the same on every store. Items
    /// come in the store's scan order.
    ///
    /// ```
    /// # async fn demo(store: kv_core::DynStore) -> kv_core::Result<()> {
    /// use futures_util::{StreamExt, TryStreamExt};
    /// use kv_core::KvStoreExt;
    /// use kv_core::search::{Condition, Filter};
    ///
    /// for (i, city) in ["Paris", "Oslo", "Paris"].iter().enumerate() {
    ///     store.put("users", &format!("user:{i}"), &serde_json::json!({"age": 20 + i, "city": city})).await?;
    /// }
    /// let filter = Filter::new().key_glob("user:*")?.and(Condition::eq("city", "Paris"));
    /// let found: Vec<_> = store.search("users", filter).take(10).try_collect().await?;
    /// let keys: Vec<&str> = found.iter().map(|item| item.key.as_str()).collect();
    /// assert_eq!(keys, ["user:0", "user:2"]);
    /// # Ok(()) }
    /// ```
    fn search<'a>(
        &'a self,
        collection: &'a str,
        filter: Filter,
    ) -> impl Stream<Item = Result<ScanItem>> + Send + 'a {
        search_stream(self, collection, filter, false)
    }

    /// The keys of the entries that match `filter` — a keys-only scan unless the filter has
    /// conditions on values.
    ///
    /// ```
    /// # async fn demo(store: kv_core::DynStore) -> kv_core::Result<()> {
    /// use futures_util::TryStreamExt;
    /// use kv_core::KvStoreExt;
    /// use kv_core::search::Filter;
    ///
    /// let keys: Vec<String> = store.search_keys("users", Filter::new().key_regex("^user:[0-9]+$")?).try_collect().await?;
    /// # let _ = keys; Ok(()) }
    /// ```
    fn search_keys<'a>(
        &'a self,
        collection: &'a str,
        filter: Filter,
    ) -> impl Stream<Item = Result<String>> + Send + 'a {
        search_stream(self, collection, filter, true).map(|r| r.map(|item| item.key))
    }

    /// The names of the collections holding entries.
    fn collections(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.collections_opts(CollectionsOptions::default())
    }

    /// Removes every entry of a collection; returns how many were removed.
    fn clear(&self, collection: &str) -> impl Future<Output = Result<u64>> + Send {
        self.clear_opts(collection, ClearOptions::default())
    }

    /// Removes everything this store owns.
    fn destroy(&self) -> impl Future<Output = Result<()>> + Send {
        self.destroy_opts(DestroyOptions::default())
    }

    /// Physically removes expired entries; returns how many.
    fn cull(&self) -> impl Future<Output = Result<u64>> + Send {
        self.cull_opts(CullOptions::default())
    }

    /// The number of live entries in a collection (a keys-only scan: O(n)).
    fn len(&self, collection: &str) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let mut keys = std::pin::pin!(self.keys(collection));
            let mut n = 0u64;
            while let Some(k) = keys.next().await {
                k?;
                n += 1;
            }
            Ok(n)
        }
    }

    /// True if the collection has no live entry.
    fn is_empty(&self, collection: &str) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let opts = ScanOptions::default().keys_only().with_page_size(1);
            let mut keys = std::pin::pin!(scan_stream(self, collection, opts));
            match keys.next().await {
                None => Ok(true),
                Some(r) => r.map(|_| false),
            }
        }
    }

    /// True if a live entry exists (spoonbill's `key in store`).
    fn contains(&self, collection: &str, key: &str) -> impl Future<Output = Result<bool>> + Send {
        self.exists(collection, key)
    }

    /// Removes an entry and returns its decoded JSON value. Of concurrent pops of one key, at
    /// most one returns the value.
    fn pop<T: DeserializeOwned + Send>(
        &self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        typed::pop(self, Codec::Json, collection, key)
    }

    /// Removes and returns one entry (the smallest key on stores with ordered scans); `None`
    /// when the collection is empty.
    fn pop_item<T: DeserializeOwned + Send>(
        &self,
        collection: &str,
    ) -> impl Future<Output = Result<Option<(String, T)>>> + Send {
        async move {
            loop {
                let opts = ScanOptions::default().keys_only().with_page_size(16);
                let page = self.scan_opts(collection, opts).await?;
                if page.items.is_empty() && page.cursor.is_none() {
                    return Ok(None);
                }
                for item in page.items {
                    if let Some(v) = typed::pop(self, Codec::Json, collection, &item.key).await? {
                        return Ok(Some((item.key, v)));
                    }
                }
                // Every candidate was taken by someone else (or the store returned an empty
                // page with a cursor): look again.
            }
        }
    }

    /// Writes every `(key, value)` pair as JSON in one batch (spoonbill's `update`).
    fn update<K, T, I>(&self, collection: &str, items: I) -> impl Future<Output = Result<()>> + Send
    where
        K: AsRef<str>,
        T: Serialize,
        I: IntoIterator<Item = (K, T)>,
    {
        let encoded: Result<Vec<(String, Bytes)>> = items
            .into_iter()
            .map(|(k, v)| Codec::Json.encode(&v).map(|b| (k.as_ref().to_owned(), b)))
            .collect();
        async move {
            let encoded = encoded?;
            if encoded.is_empty() {
                return Ok(());
            }
            typed::put_many_encoded(self, collection, encoded, None).await
        }
    }

    /// True if the collection holds exactly these entries (spoonbill's `store == dict`): the
    /// same number of live entries, and each expected key decodes to an equal value.
    fn equals<K, T, I>(
        &self,
        collection: &str,
        expected: I,
    ) -> impl Future<Output = Result<bool>> + Send
    where
        K: AsRef<str>,
        T: DeserializeOwned + PartialEq + Send + Sync,
        I: IntoIterator<Item = (K, T)>,
    {
        let expected: Vec<(String, T)> = expected
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v))
            .collect();
        async move {
            if self.len(collection).await? != expected.len() as u64 {
                return Ok(false);
            }
            for (k, v) in &expected {
                match typed::get::<Self, T>(self, Codec::Json, collection, k).await {
                    Ok(Some(actual)) if actual == *v => {}
                    Ok(_) => return Ok(false),
                    Err(e) if e.kind() == ErrorKind::Serialization => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        }
    }

    /// True if this collection and `other`'s collection hold the same keys with byte-equal
    /// values (spoonbill's `store == other_store`).
    fn same_entries<O: KvStore + ?Sized>(
        &self,
        collection: &str,
        other: &O,
        other_collection: &str,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            if self.len(collection).await? != other.len(other_collection).await? {
                return Ok(false);
            }
            let mut items = std::pin::pin!(self.scan(collection, ScanOptions::default()));
            while let Some(item) = items.next().await {
                let item = item?;
                let mine = item.entry.map(|e| e.value);
                let theirs = other.get_bytes(other_collection, &item.key).await?;
                if mine != theirs {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

impl<S: KvStore + ?Sized> KvStoreExt for S {}

/// A scan narrowed to the filter's literal key prefix, with the filter as pushdown hint, and
/// every item checked against the filter again.
pub(crate) fn search_stream<'a, S: KvStore + ?Sized>(
    store: &'a S,
    collection: &'a str,
    filter: Filter,
    keys_only: bool,
) -> impl Stream<Item = Result<ScanItem>> + Send + 'a {
    let prefix = filter.key().map(|k| k.literal_prefix()).unwrap_or_default();
    let keys_only = keys_only && !filter.needs_values();
    let filter = Arc::new(filter);
    let mut opts = ScanOptions::default()
        .with_prefix(prefix)
        .with_filter(Arc::clone(&filter));
    opts.keys_only = keys_only;
    scan_stream(store, collection, opts).filter(move |r| {
        let keep = match r {
            Ok(item) => filter.matches_item(item),
            Err(_) => true,
        };
        std::future::ready(keep)
    })
}

/// Pages → stream. Stops with an error if a store hands back the cursor it was given with an
/// empty page, which would otherwise loop forever.
pub(crate) fn scan_stream<'a, S: KvStore + ?Sized>(
    store: &'a S,
    collection: &'a str,
    opts: ScanOptions,
) -> impl Stream<Item = Result<ScanItem>> + Send + 'a {
    let state = (Some(opts), VecDeque::<ScanItem>::new());
    futures_util::stream::unfold(state, move |(mut next, mut buf)| async move {
        loop {
            if let Some(item) = buf.pop_front() {
                return Some((Ok(item), (next, buf)));
            }
            let opts = next.take()?;
            match store.scan_opts(collection, opts.clone()).await {
                Err(e) => return Some((Err(e), (None, VecDeque::new()))),
                Ok(page) => {
                    if let Some(cursor) = page.cursor {
                        if page.items.is_empty() && opts.cursor.as_ref() == Some(&cursor) {
                            let e = Error::new(
                                ErrorKind::Backend,
                                "scan made no progress (the store returned the same cursor)",
                            )
                            .with_context(
                                store.info().kind,
                                Operation::Scan,
                                Some(collection),
                                None,
                            );
                            return Some((Err(e), (None, VecDeque::new())));
                        }
                        next = Some(opts.with_cursor(Some(cursor)));
                    }
                    buf.extend(page.items);
                }
            }
        }
    })
}
