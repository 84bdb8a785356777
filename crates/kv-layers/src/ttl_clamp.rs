//! Clamps the TTL of every write to `[min, max]` and gives writes without a TTL a default one.
//!
//! Like py-key-value's `TTLClampWrapper`: a write without a TTL gets the default (if set);
//! a zero TTL is still rejected with [`ErrorKind::InvalidTtl`]
//! (it is never clamped up into a valid one); then the TTL is raised to `min` and lowered to
//! `max`. Reads are not changed.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::{KvStoreExt, Ttl};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::ttl_clamp::TtlClampLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hour = Duration::from_secs(3600);
//! let cache = MemoryStore::new().with(TtlClampLayer::new().max(hour).default_ttl(hour));
//! cache.put("pages", "/", &"<html>").await?; // no TTL asked: expires within the hour
//! assert!(matches!(cache.ttl("pages", "/").await?, Some(Ttl::Remaining(t)) if t <= hour));
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::time::Duration;

use bytes::Bytes;
use kv_core::{
    Error, ErrorKind, KvStore, Layer, Operation, PutManyOptions, PutOptions, Result, StoreInfo, ttl,
};

/// The name errors raised by this layer carry as their store.
const LAYER: &str = "ttl-clamp";

/// The configuration of a [`TtlClamp`] store: minimum, maximum and default TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtlClampLayer {
    min: Option<Duration>,
    max: Option<Duration>,
    default: Option<Duration>,
}

impl TtlClampLayer {
    /// A layer that clamps nothing (set [`min`](Self::min), [`max`](Self::max),
    /// [`default_ttl`](Self::default_ttl)).
    ///
    /// ```
    /// let layer = kv_layers::ttl_clamp::TtlClampLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// TTLs shorter than `min` are raised to `min`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::ttl_clamp::TtlClampLayer::new().min(Duration::from_secs(1));
    /// # let _ = layer;
    /// ```
    pub fn min(mut self, min: Duration) -> Self {
        self.min = Some(min);
        self
    }

    /// TTLs longer than `max` are lowered to `max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::ttl_clamp::TtlClampLayer::new().max(Duration::from_secs(60));
    /// # let _ = layer;
    /// ```
    pub fn max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// Writes without a TTL get this one (then clamped like any other). py-key-value calls it
    /// `missing_ttl`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::ttl_clamp::TtlClampLayer::new().default_ttl(Duration::from_secs(60));
    /// # let _ = layer;
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default = Some(ttl);
        self
    }

    /// The TTL a write asking for `ttl` gets.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::ttl_clamp::TtlClampLayer;
    ///
    /// let s = Duration::from_secs;
    /// let layer = TtlClampLayer::new().min(s(10)).max(s(100)).default_ttl(s(50));
    /// assert_eq!(layer.clamp(None).unwrap(), Some(s(50)));
    /// assert_eq!(layer.clamp(Some(s(1))).unwrap(), Some(s(10)));
    /// assert_eq!(layer.clamp(Some(s(1000))).unwrap(), Some(s(100)));
    /// assert!(layer.clamp(Some(Duration::ZERO)).is_err());
    /// ```
    pub fn clamp(&self, ttl: Option<Duration>) -> Result<Option<Duration>> {
        let Some(mut d) = ttl.or(self.default) else {
            return Ok(None);
        };
        ttl::validate(d)?;
        if let Some(min) = self.min {
            d = d.max(min);
        }
        if let Some(max) = self.max {
            d = d.min(max);
        }
        Ok(Some(d))
    }

    fn check(&self) -> Result<()> {
        let zero = |d: Option<Duration>| d.is_some_and(|d| d.is_zero());
        if zero(self.min) || zero(self.max) || zero(self.default) {
            return Err(Error::new(
                ErrorKind::Config,
                "ttl clamp: min, max and default must be greater than zero",
            ));
        }
        if let (Some(min), Some(max)) = (self.min, self.max) {
            if min > max {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("ttl clamp: min ({min:?}) is greater than max ({max:?})"),
                ));
            }
        }
        Ok(())
    }
}

impl<S: KvStore> Layer<S> for TtlClampLayer {
    type Store = TtlClamp<S>;

    fn layer(&self, inner: S) -> TtlClamp<S> {
        let mut info = inner.info().clone();
        if let Some(max) = self.max {
            // Every TTL is lowered to `max`, so the layer accepts any TTL the inner store
            // accepts at `max`.
            if info.capability.ttl_max.is_none_or(|m| m >= max) {
                info.capability.ttl_max = None;
            }
        }
        TtlClamp {
            inner,
            layer: *self,
            config_error: self.check().err().map(|e| e.message().to_owned()),
            info,
        }
    }
}

/// A store whose writes get clamped TTLs; see [`TtlClampLayer`].
#[derive(Clone, Debug)]
pub struct TtlClamp<S> {
    inner: S,
    layer: TtlClampLayer,
    /// A configuration mistake (min > max, a zero), reported by every write.
    config_error: Option<String>,
    info: StoreInfo,
}

impl<S> TtlClamp<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::ttl_clamp::TtlClampLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(TtlClampLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn ttl_for(
        &self,
        ttl: Option<Duration>,
        op: Operation,
        collection: &str,
        key: Option<&str>,
    ) -> Result<Option<Duration>> {
        let clamped = match &self.config_error {
            Some(msg) => Err(Error::new(ErrorKind::Config, msg.clone())),
            None => self.layer.clamp(ttl),
        };
        clamped.map_err(|e| e.with_context(LAYER, op, Some(collection), key))
    }
}

impl<S: KvStore> KvStore for TtlClamp<S> {
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
        let ttl = self.ttl_for(opts.ttl, Operation::Put, collection, Some(key))?;
        self.inner
            .put_opts(collection, key, value, opts.with_ttl_opt(ttl))
            .await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let ttl = self.ttl_for(opts.ttl, Operation::PutMany, collection, None)?;
        self.inner
            .put_many_opts(collection, entries, opts.with_ttl_opt(ttl))
            .await
    }

    forward!(inner; get_opts, get_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts,
        collections_opts, clear_opts, destroy_opts, cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::{KvStoreExt, Ttl};
    use kv_store_memory::MemoryStore;

    const HOUR: Duration = Duration::from_secs(3600);

    fn remaining(t: Option<Ttl>) -> Duration {
        match t {
            Some(Ttl::Remaining(d)) => d,
            other => panic!("expected a remaining ttl, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn clamps_min_max_and_default() {
        let s = MemoryStore::new().with(
            TtlClampLayer::new()
                .min(HOUR)
                .max(2 * HOUR)
                .default_ttl(HOUR + HOUR / 2),
        );
        s.put_with_ttl("c", "short", &1, Duration::from_secs(1))
            .await
            .unwrap();
        s.put_with_ttl("c", "long", &1, 100 * HOUR).await.unwrap();
        s.put("c", "none", &1).await.unwrap();
        s.put_many_opts(
            "c",
            &[("batch", Bytes::from_static(b"1"))],
            PutManyOptions::default(),
        )
        .await
        .unwrap();
        let short = remaining(s.ttl("c", "short").await.unwrap());
        assert!(short > HOUR - Duration::from_secs(60) && short <= HOUR);
        let long = remaining(s.ttl("c", "long").await.unwrap());
        assert!(long > 2 * HOUR - Duration::from_secs(60) && long <= 2 * HOUR);
        for k in ["none", "batch"] {
            let d = remaining(s.ttl("c", k).await.unwrap());
            assert!(d > HOUR && d <= HOUR + HOUR / 2, "{k}: {d:?}");
        }
    }

    #[tokio::test]
    async fn zero_ttl_is_still_rejected() {
        let s = MemoryStore::new().with(TtlClampLayer::new().min(HOUR));
        let err = s
            .put_with_ttl("c", "k", &1, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    }

    #[tokio::test]
    async fn max_lifts_the_ttl_limit_and_accepts_huge_ttls() {
        let s = MemoryStore::new().with(TtlClampLayer::new().max(HOUR));
        assert_eq!(s.info().capability.ttl_max, None);
        s.put_with_ttl("c", "k", &1, Duration::MAX).await.unwrap();
        assert!(remaining(s.ttl("c", "k").await.unwrap()) <= HOUR);
    }

    #[tokio::test]
    async fn bad_configuration_is_reported_on_write() {
        let s = MemoryStore::new().with(TtlClampLayer::new().min(2 * HOUR).max(HOUR));
        assert_eq!(
            s.put("c", "k", &1).await.unwrap_err().kind(),
            ErrorKind::Config
        );
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), None);
    }
}
