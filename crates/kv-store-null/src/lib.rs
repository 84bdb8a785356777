#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::future::{Future, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kv_core::url::StoreUrl;
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanOptions, ScanPage, StoreInfo, Ttl, scan, ttl,
};

/// The URL scheme of this store: `null://`.
pub const SCHEME: &str = "null";

/// A store that keeps nothing. Cloning shares the closed state.
#[derive(Clone, Debug)]
pub struct NullStore {
    info: Arc<StoreInfo>,
    closed: Arc<AtomicBool>,
}

impl Default for NullStore {
    fn default() -> Self {
        Self::new()
    }
}

impl NullStore {
    /// A new null store.
    pub fn new() -> Self {
        let capability = Capability {
            stores_data: false,
            // TTLs and conditional modes are accepted (and validated) like anywhere else.
            ttl: true,
            ttl_granularity: Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            // Nothing is ever present: an insert-if-absent always succeeds, and there is no
            // version to compare with.
            if_absent: true,
            compare_and_swap: false,
            ..Capability::default()
        };
        NullStore {
            info: Arc::new(StoreInfo::new(SCHEME, "null://", capability)),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A store from a `null://` URL (no parameters).
    ///
    /// ```
    /// assert!(kv_store_null::NullStore::open("null://").is_ok());
    /// assert!(kv_store_null::NullStore::open("null://?x=1").is_err());
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let parsed = StoreUrl::parse(url)?;
        let ctx = |e: Error| e.with_store(SCHEME).with_operation(Operation::Open);
        if parsed.scheme() != SCHEME {
            return Err(ctx(Error::new(
                ErrorKind::Config,
                format!("expected a null:// URL, got {}://", parsed.scheme()),
            )));
        }
        if !parsed.target().is_empty() {
            return Err(ctx(Error::new(
                ErrorKind::Config,
                "null:// takes no host or path",
            )));
        }
        parsed.reject_unknown_params(&[]).map_err(ctx)?;
        Ok(Self::new())
    }

    fn check(&self, op: Operation, collection: Option<&str>, key: Option<&str>) -> Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::new(ErrorKind::Closed, "the store was closed")
                .with_context(SCHEME, op, collection, key));
        }
        Ok(())
    }

    fn put_checked(&self, collection: &str, key: &str, opts: &PutOptions) -> Result<()> {
        self.check(Operation::Put, Some(collection), Some(key))?;
        ttl::expires_at(kv_core::Timestamp::now(), opts.ttl)
            .map_err(|e| e.with_context(SCHEME, Operation::Put, Some(collection), Some(key)))?;
        match opts.mode {
            PutMode::IfVersion(_) => Err(Error::new(
                ErrorKind::Unsupported,
                "the null store keeps no versions (compare-and-swap)",
            )
            .with_context(SCHEME, Operation::Put, Some(collection), Some(key))),
            _ => Ok(()),
        }
    }
}

impl KvStore for NullStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        ready(
            self.check(Operation::Get, Some(collection), Some(key))
                .map(|()| None),
        )
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        ready(
            self.check(Operation::GetMany, Some(collection), None)
                .map(|()| vec![None; keys.len()]),
        )
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        _value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.put_checked(collection, key, &opts))
    }

    fn put_many_opts(
        &self,
        collection: &str,
        _entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(
            self.check(Operation::PutMany, Some(collection), None)
                .and_then(|()| ttl::expires_at(kv_core::Timestamp::now(), opts.ttl).map(|_| ()))
                .map_err(|e| e.with_context(SCHEME, Operation::PutMany, Some(collection), None)),
        )
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        ready(
            self.check(Operation::Delete, Some(collection), Some(key))
                .map(|()| false),
        )
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        _keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        ready(
            self.check(Operation::DeleteMany, Some(collection), None)
                .map(|()| 0),
        )
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        ready(
            self.check(Operation::Ttl, Some(collection), Some(key))
                .map(|()| None),
        )
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        ready(
            self.check(Operation::Scan, Some(collection), None)
                .and_then(|()| scan::key_after(&opts).map(|_| ScanPage::default()))
                .map_err(|e| e.with_context(SCHEME, Operation::Scan, Some(collection), None)),
        )
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        ready(
            self.check(Operation::Collections, None, None)
                .map(|()| Vec::new()),
        )
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        ready(
            self.check(Operation::Clear, Some(collection), None)
                .map(|()| 0),
        )
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        ready(self.check(Operation::Destroy, None, None))
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        ready(self.check(Operation::Cull, None, None).map(|()| 0))
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        self.closed.store(true, Ordering::Relaxed);
        ready(Ok(()))
    }
}
