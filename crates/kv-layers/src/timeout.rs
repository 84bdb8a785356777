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

use kv_core::{Error, ErrorKind, KvStore, Layer, Result};

use crate::around::Call;

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

    async fn around<T, F, Fut>(&self, call: Call<'_>, mut run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match tokio::time::timeout(self.timeout, run()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("the operation did not finish within {:?}", self.timeout),
            )
            .with_context(LAYER, call.op, call.collection, call.key)),
        }
    }
}

around!(Timeout { get_opts, get_many_opts, put_opts, put_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts, close } forward { info });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use kv_core::KvStoreExt;
    use kv_core::Operation;

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
