//! The object-safe twin of [`KvStore`], so one handle type serves every store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry,
    GetOptions, KvStore, PutManyOptions, PutOptions, Result, ScanOptions, ScanPage, StoreInfo, Ttl,
};

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store behind dynamic dispatch: what [`kv::open`](https://docs.rs/kv) returns.
///
/// `DynStore` implements [`KvStore`] (and so [`KvStoreExt`](crate::KvStoreExt)); each call
/// costs one boxed future and one virtual call.
pub type DynStore = Arc<dyn DynKvStore>;

/// The object-safe version of [`KvStore`]. Every `KvStore` implements it through a blanket
/// impl; nobody implements it by hand. Its methods carry a `_dyn` suffix so they never clash
/// with `KvStore`'s when both traits are in scope.
///
/// ```
/// use std::sync::Arc;
/// use kv_core::{DynKvStore, DynStore, KvStore};
///
/// fn erase<S: KvStore>(store: S) -> DynStore {
///     Arc::new(store)
/// }
/// ```
#[allow(missing_docs)] // each method is documented on `KvStore`
pub trait DynKvStore: Send + Sync + 'static {
    fn info_dyn(&self) -> &StoreInfo;
    fn get_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        opts: GetOptions,
    ) -> BoxFuture<'a, Result<Option<Entry>>>;
    fn get_many_dyn<'a>(
        &'a self,
        collection: &'a str,
        keys: &'a [&'a str],
        opts: GetOptions,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>>>;
    fn put_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        value: Bytes,
        opts: PutOptions,
    ) -> BoxFuture<'a, Result<()>>;
    fn put_many_dyn<'a>(
        &'a self,
        collection: &'a str,
        entries: &'a [(&'a str, Bytes)],
        opts: PutManyOptions,
    ) -> BoxFuture<'a, Result<()>>;
    fn delete_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        opts: DeleteOptions,
    ) -> BoxFuture<'a, Result<bool>>;
    fn delete_many_dyn<'a>(
        &'a self,
        collection: &'a str,
        keys: &'a [&'a str],
        opts: DeleteOptions,
    ) -> BoxFuture<'a, Result<u64>>;
    fn ttl_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        opts: GetOptions,
    ) -> BoxFuture<'a, Result<Option<Ttl>>>;
    fn scan_dyn<'a>(
        &'a self,
        collection: &'a str,
        opts: ScanOptions,
    ) -> BoxFuture<'a, Result<ScanPage>>;
    fn collections_dyn(&self, opts: CollectionsOptions) -> BoxFuture<'_, Result<Vec<String>>>;
    fn clear_dyn<'a>(
        &'a self,
        collection: &'a str,
        opts: ClearOptions,
    ) -> BoxFuture<'a, Result<u64>>;
    fn destroy_dyn(&self, opts: DestroyOptions) -> BoxFuture<'_, Result<()>>;
    fn cull_dyn(&self, opts: CullOptions) -> BoxFuture<'_, Result<u64>>;
    fn close_dyn(&self) -> BoxFuture<'_, Result<()>>;
}

impl<T: KvStore> DynKvStore for T {
    fn info_dyn(&self) -> &StoreInfo {
        self.info()
    }
    fn get_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        opts: GetOptions,
    ) -> BoxFuture<'a, Result<Option<Entry>>> {
        Box::pin(self.get_opts(collection, key, opts))
    }
    fn get_many_dyn<'a>(
        &'a self,
        collection: &'a str,
        keys: &'a [&'a str],
        opts: GetOptions,
    ) -> BoxFuture<'a, Result<Vec<Option<Entry>>>> {
        Box::pin(self.get_many_opts(collection, keys, opts))
    }
    fn put_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        value: Bytes,
        opts: PutOptions,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_opts(collection, key, value, opts))
    }
    fn put_many_dyn<'a>(
        &'a self,
        collection: &'a str,
        entries: &'a [(&'a str, Bytes)],
        opts: PutManyOptions,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_many_opts(collection, entries, opts))
    }
    fn delete_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        opts: DeleteOptions,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.delete_opts(collection, key, opts))
    }
    fn delete_many_dyn<'a>(
        &'a self,
        collection: &'a str,
        keys: &'a [&'a str],
        opts: DeleteOptions,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.delete_many_opts(collection, keys, opts))
    }
    fn ttl_dyn<'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        opts: GetOptions,
    ) -> BoxFuture<'a, Result<Option<Ttl>>> {
        Box::pin(self.ttl_opts(collection, key, opts))
    }
    fn scan_dyn<'a>(
        &'a self,
        collection: &'a str,
        opts: ScanOptions,
    ) -> BoxFuture<'a, Result<ScanPage>> {
        Box::pin(self.scan_opts(collection, opts))
    }
    fn collections_dyn(&self, opts: CollectionsOptions) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.collections_opts(opts))
    }
    fn clear_dyn<'a>(
        &'a self,
        collection: &'a str,
        opts: ClearOptions,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.clear_opts(collection, opts))
    }
    fn destroy_dyn(&self, opts: DestroyOptions) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.destroy_opts(opts))
    }
    fn cull_dyn(&self, opts: CullOptions) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.cull_opts(opts))
    }
    fn close_dyn(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.close())
    }
}

/// Shows the store kind and its (redacted) location, so a [`DynStore`] can be printed and used
/// with `unwrap`/`expect_err`.
///
/// ```
/// # use kv_core::DynStore;
/// # fn show(store: DynStore) -> String {
/// format!("{store:?}") // Store { kind: "memory", location: "memory://" }
/// # }
/// ```
impl std::fmt::Debug for dyn DynKvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.info_dyn();
        f.debug_struct("Store")
            .field("kind", &info.kind)
            .field("location", &info.location)
            .finish()
    }
}

impl KvStore for dyn DynKvStore {
    fn info(&self) -> &StoreInfo {
        self.info_dyn()
    }
    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        // `async fn`, not the boxed future itself: it borrows several inputs, and only an
        // async fn can name their combined lifetime in the opaque return type.
        self.get_dyn(collection, key, opts).await
    }
    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        self.get_many_dyn(collection, keys, opts).await
    }
    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        self.put_dyn(collection, key, value, opts).await
    }
    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        self.put_many_dyn(collection, entries, opts).await
    }
    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        self.delete_dyn(collection, key, opts).await
    }
    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        self.delete_many_dyn(collection, keys, opts).await
    }
    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        self.ttl_dyn(collection, key, opts).await
    }
    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        self.scan_dyn(collection, opts).await
    }
    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        self.collections_dyn(opts).await
    }
    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        self.clear_dyn(collection, opts).await
    }
    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        self.destroy_dyn(opts).await
    }
    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        self.cull_dyn(opts).await
    }
    async fn close(&self) -> Result<()> {
        self.close_dyn().await
    }
}

/// Forwards every `KvStore` method through a smart pointer, so `Arc<S>`, `Box<S>` and
/// [`DynStore`] are stores too.
macro_rules! forward_store {
    ($ptr:ident) => {
        impl<T: KvStore + ?Sized> KvStore for $ptr<T> {
            #[inline]
            fn info(&self) -> &StoreInfo {
                (**self).info()
            }
            #[inline]
            fn get_opts(
                &self,
                collection: &str,
                key: &str,
                opts: GetOptions,
            ) -> impl Future<Output = Result<Option<Entry>>> + Send {
                (**self).get_opts(collection, key, opts)
            }
            #[inline]
            fn get_many_opts(
                &self,
                collection: &str,
                keys: &[&str],
                opts: GetOptions,
            ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
                (**self).get_many_opts(collection, keys, opts)
            }
            #[inline]
            fn put_opts(
                &self,
                collection: &str,
                key: &str,
                value: Bytes,
                opts: PutOptions,
            ) -> impl Future<Output = Result<()>> + Send {
                (**self).put_opts(collection, key, value, opts)
            }
            #[inline]
            fn put_many_opts(
                &self,
                collection: &str,
                entries: &[(&str, Bytes)],
                opts: PutManyOptions,
            ) -> impl Future<Output = Result<()>> + Send {
                (**self).put_many_opts(collection, entries, opts)
            }
            #[inline]
            fn delete_opts(
                &self,
                collection: &str,
                key: &str,
                opts: DeleteOptions,
            ) -> impl Future<Output = Result<bool>> + Send {
                (**self).delete_opts(collection, key, opts)
            }
            #[inline]
            fn delete_many_opts(
                &self,
                collection: &str,
                keys: &[&str],
                opts: DeleteOptions,
            ) -> impl Future<Output = Result<u64>> + Send {
                (**self).delete_many_opts(collection, keys, opts)
            }
            #[inline]
            fn ttl_opts(
                &self,
                collection: &str,
                key: &str,
                opts: GetOptions,
            ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
                (**self).ttl_opts(collection, key, opts)
            }
            #[inline]
            fn scan_opts(
                &self,
                collection: &str,
                opts: ScanOptions,
            ) -> impl Future<Output = Result<ScanPage>> + Send {
                (**self).scan_opts(collection, opts)
            }
            #[inline]
            fn collections_opts(
                &self,
                opts: CollectionsOptions,
            ) -> impl Future<Output = Result<Vec<String>>> + Send {
                (**self).collections_opts(opts)
            }
            #[inline]
            fn clear_opts(
                &self,
                collection: &str,
                opts: ClearOptions,
            ) -> impl Future<Output = Result<u64>> + Send {
                (**self).clear_opts(collection, opts)
            }
            #[inline]
            fn destroy_opts(
                &self,
                opts: DestroyOptions,
            ) -> impl Future<Output = Result<()>> + Send {
                (**self).destroy_opts(opts)
            }
            #[inline]
            fn cull_opts(&self, opts: CullOptions) -> impl Future<Output = Result<u64>> + Send {
                (**self).cull_opts(opts)
            }
            #[inline]
            fn close(&self) -> impl Future<Output = Result<()>> + Send {
                (**self).close()
            }
        }
    };
}

forward_store!(Arc);
forward_store!(Box);
