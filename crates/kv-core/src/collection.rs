//! A typed view of one collection.
//!
//! The methods spell out `impl Future + Send` instead of `async fn`: the explicit bound is
//! proven once here, generically, whereas an inferred one is re-proven at each call site
//! with the concrete store type, where rustc fails on higher-ranked lifetimes ("implementation
//! of `KvStore` is not general enough") for `DynStore`.
#![allow(clippy::manual_async_fn)]

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ext::{scan_stream, search_stream};
use crate::search::Filter;
use crate::{
    Codec, DynStore, Error, ErrorKind, KvStore, KvStoreExt, PutOptions, Result, ScanOptions, Ttl,
    typed,
};

/// One collection of a store, holding values of type `T` encoded with a [`Codec`].
///
/// Cheap to clone when the store is (`Arc`, [`DynStore`]).
///
/// ```
/// # async fn demo(store: kv_core::DynStore) -> kv_core::Result<()> {
/// use kv_core::{Codec, Collection};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String, age: u32 }
///
/// let users: Collection<User> = Collection::new(store, "users").with_codec(Codec::Postcard);
/// users.put("alice", &User { name: "Alice".into(), age: 30 }).await?;
/// assert_eq!(users.get("alice").await?.unwrap().age, 30);
/// assert_eq!(users.len().await?, 1);
/// # Ok(()) }
/// ```
pub struct Collection<T, S = DynStore> {
    store: S,
    name: String,
    codec: Codec,
    _values: PhantomData<fn() -> T>,
}

impl<T, S: Clone> Clone for Collection<T, S> {
    fn clone(&self) -> Self {
        Collection {
            store: self.store.clone(),
            name: self.name.clone(),
            codec: self.codec,
            _values: PhantomData,
        }
    }
}

impl<T, S: KvStore> fmt::Debug for Collection<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collection")
            .field("store", &self.store.info().location)
            .field("name", &self.name)
            .field("codec", &self.codec)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T, S> Collection<T, S>
where
    S: KvStore,
    T: Serialize + DeserializeOwned + Send,
{
    /// A typed view of collection `name` (empty = the store's default collection), using JSON.
    pub fn new(store: S, name: impl Into<String>) -> Self {
        Collection {
            store,
            name: name.into(),
            codec: Codec::Json,
            _values: PhantomData,
        }
    }

    /// Uses another codec.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The codec in use.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads a value.
    pub fn get(&self, key: &str) -> impl Future<Output = Result<Option<T>>> + Send {
        async move { typed::get(&self.store, self.codec, &self.name, key).await }
    }

    /// Reads a value that must exist: a missing key is an error of kind
    /// [`ErrorKind::NotFound`] naming the collection and key (the raise-on-missing flavour).
    pub fn require(&self, key: &str) -> impl Future<Output = Result<T>> + Send {
        async move {
            self.get(key).await?.ok_or_else(|| {
                Error::new(ErrorKind::NotFound, "no entry with this key")
                    .with_collection(&self.name)
                    .with_key(key)
            })
        }
    }

    /// Reads many values; one slot per key, in order.
    pub fn get_many(&self, keys: &[&str]) -> impl Future<Output = Result<Vec<Option<T>>>> + Send {
        async move { typed::get_many(&self.store, self.codec, &self.name, keys).await }
    }

    /// Writes a value without expiry.
    pub fn put(&self, key: &str, value: &T) -> impl Future<Output = Result<()>> + Send {
        // Encoded before the future starts, so `T` need not be `Sync`.
        let bytes = self.codec.encode(value);
        async move {
            let bytes = bytes?;
            self.store
                .put_opts(&self.name, key, bytes, PutOptions::default())
                .await
        }
    }

    /// Writes a value that expires after `ttl`.
    pub fn put_with_ttl(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        // Encoded before the future starts, so `T` need not be `Sync`.
        let bytes = self.codec.encode(value);
        async move {
            let bytes = bytes?;
            self.store
                .put_opts(&self.name, key, bytes, PutOptions::default().with_ttl(ttl))
                .await
        }
    }

    /// Writes a value with full options (TTL, if-absent, compare-and-swap).
    pub fn put_opts(
        &self,
        key: &str,
        value: &T,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        // Encoded before the future starts, so `T` need not be `Sync`.
        let bytes = self.codec.encode(value);
        async move {
            let bytes = bytes?;
            self.store.put_opts(&self.name, key, bytes, opts).await
        }
    }

    /// Writes only if absent; `Ok(false)` if a live entry exists.
    pub fn put_if_absent(&self, key: &str, value: &T) -> impl Future<Output = Result<bool>> + Send {
        // Encoded before the future starts, so `T` need not be `Sync`.
        let bytes = self.codec.encode(value);
        async move {
            let bytes = bytes?;
            typed::put_if_absent_bytes(&self.store, &self.name, key, bytes, None).await
        }
    }

    /// Writes many values in one batch, optionally with one TTL for all.
    pub fn put_many(
        &self,
        entries: &[(&str, T)],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        let encoded = typed::encode_many(self.codec, entries);
        async move {
            let encoded = encoded?;
            typed::put_many_encoded(&self.store, &self.name, encoded, ttl).await
        }
    }

    /// Deletes an entry; `true` if it existed.
    pub fn delete(&self, key: &str) -> impl Future<Output = Result<bool>> + Send {
        async move { self.store.delete(&self.name, key).await }
    }

    /// Deletes many entries; returns how many existed.
    pub fn delete_many(&self, keys: &[&str]) -> impl Future<Output = Result<u64>> + Send {
        async move { self.store.delete_many(&self.name, keys).await }
    }

    /// The remaining lifetime; `None` if missing.
    pub fn ttl(&self, key: &str) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        async move { self.store.ttl(&self.name, key).await }
    }

    /// True if a live entry exists.
    pub fn contains(&self, key: &str) -> impl Future<Output = Result<bool>> + Send {
        async move { self.store.exists(&self.name, key).await }
    }

    /// Returns the stored value, or computes, stores (with an optional TTL) and returns it.
    pub fn get_or_insert_with<F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        make: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        async move {
            typed::get_or_insert_with(&self.store, self.codec, &self.name, key, ttl, make).await
        }
    }

    /// Removes an entry and returns its value.
    pub fn pop(&self, key: &str) -> impl Future<Output = Result<Option<T>>> + Send {
        async move { typed::pop(&self.store, self.codec, &self.name, key).await }
    }

    /// The number of live entries (O(n)).
    pub fn len(&self) -> impl Future<Output = Result<u64>> + Send {
        async move { self.store.len(&self.name).await }
    }

    /// True if there is no live entry.
    pub fn is_empty(&self) -> impl Future<Output = Result<bool>> + Send {
        async move { self.store.is_empty(&self.name).await }
    }

    /// Removes every entry; returns how many.
    pub fn clear(&self) -> impl Future<Output = Result<u64>> + Send {
        async move { self.store.clear(&self.name).await }
    }

    /// A stream over the keys.
    pub fn keys(&self) -> impl Stream<Item = Result<String>> + Send + '_ {
        self.store.keys(&self.name)
    }

    /// A stream over `(key, value)` pairs.
    pub fn items(&self) -> impl Stream<Item = Result<(String, T)>> + Send + '_
    where
        T: 'static,
    {
        let codec = self.codec;
        let name = self.name.as_str();
        scan_stream(&self.store, name, ScanOptions::default())
            .map(move |r| decode_item(codec, name, r))
    }

    /// A stream over the `(key, value)` pairs that match `filter` (see
    /// [`search`](crate::search)). Conditions read values as JSON, so with another codec only
    /// the key pattern can match anything.
    ///
    /// ```
    /// # async fn demo(store: kv_core::DynStore) -> kv_core::Result<()> {
    /// use futures_util::{StreamExt, TryStreamExt};
    /// use kv_core::Collection;
    /// use kv_core::search::{Condition, Filter};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct User { name: String, age: u32 }
    ///
    /// let users: Collection<User> = Collection::new(store, "users");
    /// let adults: Vec<(String, User)> = users
    ///     .search(Filter::new().and(Condition::ge("age", 18)))
    ///     .take(20)
    ///     .try_collect()
    ///     .await?;
    /// # let _ = adults; Ok(()) }
    /// ```
    pub fn search(&self, filter: Filter) -> impl Stream<Item = Result<(String, T)>> + Send + '_
    where
        T: 'static,
    {
        let codec = self.codec;
        let name = self.name.as_str();
        search_stream(&self.store, name, filter, false).map(move |r| decode_item(codec, name, r))
    }
}

/// A scan item's key and decoded value.
fn decode_item<T: DeserializeOwned>(
    codec: Codec,
    collection: &str,
    item: Result<crate::ScanItem>,
) -> Result<(String, T)> {
    let item = item?;
    let entry = item.entry.ok_or_else(|| {
        Error::new(
            ErrorKind::Backend,
            "store returned a scan item without its entry",
        )
    })?;
    let v = codec
        .decode(&entry.value)
        .map_err(|e| e.with_collection(collection).with_key(&item.key))?;
    Ok((item.key, v))
}
