//! The store trait every backend implements, with static dispatch.

use std::future::Future;

use bytes::Bytes;

use crate::{
    Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions,
    Entry, GetOptions, PutManyOptions, PutOptions, Result, ScanOptions, ScanPage, Ttl,
};

/// The name of the default collection, used when an operation is given an empty collection
/// name (as in py-key-value).
pub const DEFAULT_COLLECTION: &str = "default_collection";

/// What a store is: its kind, where its data lives, and what it can do.
///
/// ```
/// use kv_core::{Capability, StoreInfo};
///
/// let info = StoreInfo::new("memory", "memory://", Capability::default());
/// assert_eq!(info.default_collection, "default_collection");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreInfo {
    /// The store kind, equal to its URL scheme (`"memory"`, `"redb"`, `"redis"`, ...).
    pub kind: &'static str,
    /// Where the data lives (URL or path) with every secret redacted.
    pub location: String,
    /// The collection used when an operation passes an empty collection name.
    pub default_collection: String,
    /// What the store can do.
    pub capability: Capability,
}

impl StoreInfo {
    /// A new description with the default collection name.
    pub fn new(kind: &'static str, location: impl Into<String>, capability: Capability) -> Self {
        StoreInfo {
            kind,
            location: location.into(),
            default_collection: DEFAULT_COLLECTION.to_owned(),
            capability,
        }
    }

    /// Sets the default collection.
    pub fn with_default_collection(mut self, name: impl Into<String>) -> Self {
        self.default_collection = name.into();
        self
    }

    /// The collection an operation addresses: `collection`, or the default one if empty.
    #[inline]
    pub fn resolve<'a>(&'a self, collection: &'a str) -> &'a str {
        if collection.is_empty() {
            &self.default_collection
        } else {
            collection
        }
    }
}

/// A key-value store: the one trait every backend implements.
///
/// Entries are addressed by `(collection, key)`, both arbitrary UTF-8 (an empty collection
/// means [`StoreInfo::default_collection`]); values are [`Bytes`]. Every method is one
/// operation taking an options struct; the methods have no default bodies, so a backend
/// without a native batch or scan calls a [`fallback`](crate::fallback) helper explicitly.
///
/// The rules every implementation keeps (checked by the `kv-conformance` suite):
/// - a miss is `Ok(None)`, never an error; no input and no stored bytes cause a panic;
/// - an expired entry is invisible to every operation (get, batches, ttl, delete, scans,
///   conditional puts), whether or not the backend expires it natively;
/// - a zero TTL is rejected with [`ErrorKind::InvalidTtl`](crate::ErrorKind::InvalidTtl), and
///   TTLs are never rounded down;
/// - batch results keep request order.
///
/// Users normally call the shorter methods of [`KvStoreExt`](crate::KvStoreExt), which every
/// store gets for free. Stores are used through static dispatch (`S: KvStore`) or through the
/// object-safe twin [`DynKvStore`](crate::DynKvStore) (`Arc<dyn DynKvStore>` is itself a
/// `KvStore`).
pub trait KvStore: Send + Sync + 'static {
    /// What the store is and can do.
    fn info(&self) -> &StoreInfo;

    /// Reads one entry.
    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send;

    /// Reads many entries of one collection; the result has one slot per key, in order.
    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send;

    /// Writes one entry.
    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Writes many entries of one collection (upserts; a key given twice keeps the last value).
    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes one entry; `true` if a live entry was removed.
    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        opts: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes many entries; returns how many distinct live entries were removed.
    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The remaining lifetime of an entry; `None` if it does not exist (or has expired).
    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send;

    /// One page of the keys (or entries) of a collection. Resume with the page's cursor; a
    /// `None` cursor means the scan is complete. [`KvStoreExt::scan`](crate::KvStoreExt::scan)
    /// turns pages into a `Stream`.
    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send;

    /// The names of the collections that hold entries (a store may also list collections that
    /// became empty).
    fn collections_opts(
        &self,
        opts: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Removes every entry of one collection; returns how many live entries were removed.
    fn clear_opts(
        &self,
        collection: &str,
        opts: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Removes everything this store owns (all its collections) and nothing else: never a
    /// whole shared database or server. The store stays usable.
    fn destroy_opts(&self, opts: DestroyOptions) -> impl Future<Output = Result<()>> + Send;

    /// Physically removes expired entries; returns how many. Stores that expire natively
    /// return `Ok(0)`.
    fn cull_opts(&self, opts: CullOptions) -> impl Future<Output = Result<u64>> + Send;

    /// Flushes and releases resources. Later operations fail with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed); closing twice is fine.
    fn close(&self) -> impl Future<Output = Result<()>> + Send;
}
