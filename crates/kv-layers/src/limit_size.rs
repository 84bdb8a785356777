//! Rejects values outside a size range before they reach the store.
//!
//! A value longer than `max` bytes fails with [`ErrorKind::ValueTooLarge`], one shorter than
//! `min` with [`ErrorKind::InvalidArgument`]; both name the layer, operation, collection and
//! key, and nothing is written (a batch with one bad value writes nothing). Sizes are the raw
//! value bytes the layer receives: put it above a compression layer to limit what callers
//! write, below one to limit what the backend stores. The store's
//! [`Capability::max_value_len`](kv_core::Capability::max_value_len) becomes the smaller of
//! the two limits.
//!
//! ```
//! use kv_core::{ErrorKind, KvStoreExt};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::limit_size::LimitSizeLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new().with(LimitSizeLayer::new().max(1024));
//! store.put_bytes("c", "small", vec![0u8; 1024]).await?;
//! let err = store.put_bytes("c", "big", vec![0u8; 1025]).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use bytes::Bytes;
use kv_core::{
    Error, ErrorKind, KvStore, Layer, Operation, PutManyOptions, PutOptions, Result, StoreInfo,
};

const LAYER: &str = "limit-size";

/// The configuration of a [`LimitSize`] store: the smallest and largest value accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitSizeLayer {
    min: Option<usize>,
    max: Option<usize>,
}

impl LimitSizeLayer {
    /// A layer without limits (set [`max`](Self::max) and/or [`min`](Self::min)).
    ///
    /// ```
    /// let layer = kv_layers::limit_size::LimitSizeLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Values longer than `bytes` are rejected with [`ErrorKind::ValueTooLarge`].
    ///
    /// ```
    /// let layer = kv_layers::limit_size::LimitSizeLayer::new().max(64 * 1024);
    /// # let _ = layer;
    /// ```
    pub fn max(mut self, bytes: usize) -> Self {
        self.max = Some(bytes);
        self
    }

    /// Values shorter than `bytes` are rejected with [`ErrorKind::InvalidArgument`].
    ///
    /// ```
    /// let layer = kv_layers::limit_size::LimitSizeLayer::new().min(1);
    /// # let _ = layer;
    /// ```
    pub fn min(mut self, bytes: usize) -> Self {
        self.min = Some(bytes);
        self
    }

    fn check(&self, len: usize) -> Result<()> {
        if let Some(max) = self.max.filter(|&m| len > m) {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!("value of {len} bytes is larger than the limit of {max} bytes"),
            ));
        }
        if let Some(min) = self.min.filter(|&m| len < m) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("value of {len} bytes is smaller than the minimum of {min} bytes"),
            ));
        }
        Ok(())
    }
}

impl<S: KvStore> Layer<S> for LimitSizeLayer {
    type Store = LimitSize<S>;

    fn layer(&self, inner: S) -> LimitSize<S> {
        let mut info = inner.info().clone();
        let cap = &mut info.capability;
        cap.max_value_len = match (cap.max_value_len, self.max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        LimitSize {
            inner,
            limits: *self,
            info,
        }
    }
}

/// A store rejecting values outside a size range; see [`LimitSizeLayer`].
#[derive(Clone, Debug)]
pub struct LimitSize<S> {
    inner: S,
    limits: LimitSizeLayer,
    info: StoreInfo,
}

impl<S> LimitSize<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::limit_size::LimitSizeLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(LimitSizeLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: KvStore> KvStore for LimitSize<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        self.limits
            .check(value.len())
            .map_err(|e| e.with_context(LAYER, Operation::Put, Some(collection), Some(key)))?;
        self.inner.put_opts(collection, key, value, opts).await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        for (key, value) in entries {
            self.limits.check(value.len()).map_err(|e| {
                e.with_context(LAYER, Operation::PutMany, Some(collection), Some(key))
            })?;
        }
        self.inner.put_many_opts(collection, entries, opts).await
    }

    forward!(inner; get_opts, get_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts,
        collections_opts, clear_opts, destroy_opts, cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    #[tokio::test]
    async fn limits_are_checked_before_writing() {
        let s = MemoryStore::new().with(LimitSizeLayer::new().min(2).max(4));
        assert_eq!(s.info().capability.max_value_len, Some(4));
        s.put_bytes("c", "ok", &b"1234"[..]).await.unwrap();
        let big = s.put_bytes("c", "big", &b"12345"[..]).await.unwrap_err();
        assert_eq!(big.kind(), ErrorKind::ValueTooLarge);
        assert_eq!((big.store(), big.key()), (Some("limit-size"), Some("big")));
        let small = s.put_bytes("c", "small", &b"1"[..]).await.unwrap_err();
        assert_eq!(small.kind(), ErrorKind::InvalidArgument);
        let batch = [
            ("a", Bytes::from_static(b"123")),
            ("b", Bytes::from_static(b"123456")),
        ];
        let err = s
            .put_many_opts("c", &batch, PutManyOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.key(), Some("b"));
        assert_eq!(
            s.get_bytes("c", "a").await.unwrap(),
            None,
            "batch is all or nothing"
        );
    }
}
