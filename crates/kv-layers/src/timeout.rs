//! Gives every operation a deadline: one that has not finished in time fails with
//! [`ErrorKind::Timeout`] (temporary, so a [`retry`](crate::retry) layer above may try
//! again), naming the layer, operation, collection and key.
//!
//! Uses `tokio::time::timeout`, so the store must be used inside a Tokio runtime with its time
//! driver enabled. A write that timed out may still have been applied by the backend.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::timeout::TimeoutLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new().with(TimeoutLayer::new(Duration::from_secs(5)));
//! store.put("c", "k", &1).await?;
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry, Error,
    ErrorKind, GetOptions, KvStore, Layer, Operation, PutManyOptions, PutOptions, Result,
    ScanOptions, ScanPage, StoreInfo, Ttl,
};

const LAYER: &str = "timeout";

/// The configuration of a [`Timeout`] store: the deadline of each operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// Every operation must finish within `timeout` (py-key-value's default is 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::timeout::TimeoutLayer::new(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn new(timeout: Duration) -> Self {
        TimeoutLayer { timeout }
    }
}

impl<S: KvStore> Layer<S> for TimeoutLayer {
    type Store = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// A store whose operations have a deadline; see [`TimeoutLayer`].
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Timeout<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::timeout::TimeoutLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(TimeoutLayer::new(Duration::from_secs(1)));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn run<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("the operation did not finish within {:?}", self.timeout),
            )
            .with_context(LAYER, op, collection, key)),
        }
    }
}

impl<S: KvStore> KvStore for Timeout<S> {
    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let fut = self.inner.get_opts(collection, key, opts);
        self.run(Operation::Get, Some(collection), Some(key), fut)
            .await
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let fut = self.inner.get_many_opts(collection, keys, opts);
        self.run(Operation::GetMany, Some(collection), None, fut)
            .await
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let fut = self.inner.put_opts(collection, key, value, opts);
        self.run(Operation::Put, Some(collection), Some(key), fut)
            .await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let fut = self.inner.put_many_opts(collection, entries, opts);
        self.run(Operation::PutMany, Some(collection), None, fut)
            .await
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let fut = self.inner.delete_opts(collection, key, opts);
        self.run(Operation::Delete, Some(collection), Some(key), fut)
            .await
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let fut = self.inner.delete_many_opts(collection, keys, opts);
        self.run(Operation::DeleteMany, Some(collection), None, fut)
            .await
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let fut = self.inner.ttl_opts(collection, key, opts);
        self.run(Operation::Ttl, Some(collection), Some(key), fut)
            .await
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let fut = self.inner.scan_opts(collection, opts);
        self.run(Operation::Scan, Some(collection), None, fut).await
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let fut = self.inner.collections_opts(opts);
        self.run(Operation::Collections, None, None, fut).await
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let fut = self.inner.clear_opts(collection, opts);
        self.run(Operation::Clear, Some(collection), None, fut)
            .await
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let fut = self.inner.destroy_opts(opts);
        self.run(Operation::Destroy, None, None, fut).await
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let fut = self.inner.cull_opts(opts);
        self.run(Operation::Cull, None, None, fut).await
    }

    async fn close(&self) -> Result<()> {
        let fut = self.inner.close();
        self.run(Operation::Close, None, None, fut).await
    }

    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use kv_core::KvStoreExt;

    // Paused time: the runtime jumps to the deadline as soon as every task is idle, so the
    // test waits for nothing and has no timing threshold.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_operation_times_out() {
        let flaky = Flaky::new();
        let s = flaky
            .clone()
            .with(TimeoutLayer::new(Duration::from_secs(5)));
        s.put("c", "k", &1).await.unwrap();
        flaky.hang(true);
        let err = s.get::<i32>("c", "k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.is_temporary());
        assert_eq!(err.store(), Some("timeout"));
        assert_eq!(err.operation(), Some(Operation::Get));
        assert_eq!((err.collection(), err.key()), (Some("c"), Some("k")));
        let err = s.collections().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn inner_errors_pass_through() {
        let flaky = Flaky::new();
        let s = flaky
            .clone()
            .with(TimeoutLayer::new(Duration::from_secs(5)));
        flaky.fail_next(1);
        let err = s.get::<i32>("c", "k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
}
