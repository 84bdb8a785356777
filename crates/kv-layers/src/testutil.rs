//! Helpers for the unit tests.

use futures_util::TryStreamExt;
use kv_core::{KvStore, KvStoreExt};

/// Every key of a collection, in scan order.
pub(crate) async fn keys<S: KvStore>(store: &S, collection: &str) -> Vec<String> {
    store.keys(collection).try_collect().await.unwrap()
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry, Error,
    ErrorKind, GetOptions, PutManyOptions, PutOptions, Result, ScanOptions, ScanPage, StoreInfo,
    Ttl,
};
use kv_store_memory::MemoryStore;

/// A memory store that fails (or hangs) on demand and counts the calls it gets.
#[allow(dead_code)] // each helper is used by some layers tests
#[derive(Clone, Default)]
pub(crate) struct Flaky {
    pub inner: MemoryStore,
    state: Arc<FlakyState>,
}

#[derive(Default)]
struct FlakyState {
    calls: AtomicU32,
    fail_next: AtomicU32,
    permanent: AtomicBool,
    hang: AtomicBool,
}

#[allow(dead_code)]
impl Flaky {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls fail with a temporary `Unavailable` error.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Failures are permanent (`Backend`) instead of temporary.
    pub fn permanent(&self, yes: bool) {
        self.state.permanent.store(yes, Ordering::SeqCst);
    }

    /// Every call hangs forever.
    pub fn hang(&self, yes: bool) {
        self.state.hang.store(yes, Ordering::SeqCst);
    }

    pub fn calls(&self) -> u32 {
        self.state.calls.load(Ordering::SeqCst)
    }

    async fn check(&self) -> Result<()> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        if self.state.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let failing = self
            .state
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(if self.state.permanent.load(Ordering::SeqCst) {
                Error::new(ErrorKind::Backend, "injected permanent failure")
            } else {
                Error::new(ErrorKind::Unavailable, "injected temporary failure")
            }
            .with_store("flaky"));
        }
        Ok(())
    }
}

impl KvStore for Flaky {
    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }
    async fn get_opts(&self, c: &str, k: &str, o: GetOptions) -> Result<Option<Entry>> {
        self.check().await?;
        self.inner.get_opts(c, k, o).await
    }
    async fn get_many_opts(
        &self,
        c: &str,
        k: &[&str],
        o: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        self.check().await?;
        self.inner.get_many_opts(c, k, o).await
    }
    async fn put_opts(&self, c: &str, k: &str, v: Bytes, o: PutOptions) -> Result<()> {
        self.check().await?;
        self.inner.put_opts(c, k, v, o).await
    }
    async fn put_many_opts(&self, c: &str, e: &[(&str, Bytes)], o: PutManyOptions) -> Result<()> {
        self.check().await?;
        self.inner.put_many_opts(c, e, o).await
    }
    async fn delete_opts(&self, c: &str, k: &str, o: DeleteOptions) -> Result<bool> {
        self.check().await?;
        self.inner.delete_opts(c, k, o).await
    }
    async fn delete_many_opts(&self, c: &str, k: &[&str], o: DeleteOptions) -> Result<u64> {
        self.check().await?;
        self.inner.delete_many_opts(c, k, o).await
    }
    async fn ttl_opts(&self, c: &str, k: &str, o: GetOptions) -> Result<Option<Ttl>> {
        self.check().await?;
        self.inner.ttl_opts(c, k, o).await
    }
    async fn scan_opts(&self, c: &str, o: ScanOptions) -> Result<ScanPage> {
        self.check().await?;
        self.inner.scan_opts(c, o).await
    }
    async fn collections_opts(&self, o: CollectionsOptions) -> Result<Vec<String>> {
        self.check().await?;
        self.inner.collections_opts(o).await
    }
    async fn clear_opts(&self, c: &str, o: ClearOptions) -> Result<u64> {
        self.check().await?;
        self.inner.clear_opts(c, o).await
    }
    async fn destroy_opts(&self, o: DestroyOptions) -> Result<()> {
        self.check().await?;
        self.inner.destroy_opts(o).await
    }
    async fn cull_opts(&self, o: CullOptions) -> Result<u64> {
        self.check().await?;
        self.inner.cull_opts(o).await
    }
    async fn close(&self) -> Result<()> {
        self.check().await?;
        self.inner.close().await
    }
}
