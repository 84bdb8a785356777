//! Retries operations that failed with a temporary error, with exponential backoff and jitter.
//!
//! Only errors whose [`is_temporary`](kv_core::Error::is_temporary) is true are retried (a
//! lost connection, a timeout, an overloaded backend); every other error is returned at once.
//! Retry `n` (from 0) waits a random time between half and all of
//! `min(initial_delay × multiplier^n, max_delay)` ("equal jitter": retries from many clients
//! spread out, and each still backs off). After `max_retries` retries the last error is
//! returned.
//!
//! **Conditional puts are never retried.** A put with [`PutMode::IfAbsent`](kv_core::PutMode::IfAbsent) or
//! [`PutMode::IfVersion`](kv_core::PutMode::IfVersion) that failed with a temporary error may still have been applied (the
//! reply was lost); retrying it blindly would then report `ConditionFailed` for a write that
//! succeeded, or apply one that should have failed. The layer returns the temporary error at
//! once, so the caller can read the entry and decide. Everything else is idempotent and
//! retried; note that a retried `delete` (or `delete_many`, `clear`) whose first attempt was
//! applied reports what the retry removed (`false`, or a smaller count).
//!
//! Sleeps use `tokio::time`, so the store must be used inside a Tokio runtime with its time
//! driver enabled.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::retry::RetryLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let layer = RetryLayer::new().max_retries(5).initial_delay(Duration::from_millis(50));
//! let store = MemoryStore::new().with(layer);
//! store.put("c", "k", &1).await?;
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::around::Call;
use kv_core::{KvStore, Layer, Result};

/// The configuration of a [`Retry`] store: how often and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryLayer {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: bool,
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer {
            max_retries: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

impl RetryLayer {
    /// py-key-value's defaults: 3 retries, 100 ms initial delay doubling up to 10 s, with
    /// jitter.
    ///
    /// ```
    /// let layer = kv_layers::retry::RetryLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times a failed operation is tried again (0 disables retries).
    ///
    /// ```
    /// let layer = kv_layers::retry::RetryLayer::new().max_retries(5);
    /// # let _ = layer;
    /// ```
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The backoff before the first retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::retry::RetryLayer::new().initial_delay(Duration::from_millis(10));
    /// # let _ = layer;
    /// ```
    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    /// The longest backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::retry::RetryLayer::new().max_delay(Duration::from_secs(1));
    /// # let _ = layer;
    /// ```
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The factor the backoff grows by after each retry (values below 1 are treated as 1).
    ///
    /// ```
    /// let layer = kv_layers::retry::RetryLayer::new().multiplier(3.0);
    /// # let _ = layer;
    /// ```
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 1.0 };
        self
    }

    /// Turns jitter off: every client then waits exactly the backoff.
    ///
    /// ```
    /// let layer = kv_layers::retry::RetryLayer::new().no_jitter();
    /// # let _ = layer;
    /// ```
    pub fn no_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before retry `n` (from 0), jitter included.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::retry::RetryLayer;
    ///
    /// let layer = RetryLayer::new().initial_delay(Duration::from_millis(100));
    /// let d = layer.backoff(2); // between half and all of 400 ms
    /// assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
    /// ```
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = self.multiplier.powi(n.min(1000) as i32);
        let base = self
            .initial_delay
            .checked_mul_f64_sat(factor)
            .min(self.max_delay);
        if !self.jitter {
            return base;
        }
        let half = base / 2;
        half + random_up_to(base - half)
    }
}

/// `Duration::mul_f64` without the panic on overflow.
trait MulSat {
    fn checked_mul_f64_sat(self, f: f64) -> Duration;
}

impl MulSat for Duration {
    fn checked_mul_f64_sat(self, f: f64) -> Duration {
        Duration::try_from_secs_f64(self.as_secs_f64() * f).unwrap_or(Duration::MAX)
    }
}

/// A uniformly random duration in `[0, max]`, from the standard library's randomly keyed
/// hasher (no RNG dependency; jitter needs spread, not secrecy).
fn random_up_to(max: Duration) -> Duration {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    Duration::from_nanos(h.finish() % nanos.saturating_add(1).max(1))
}

impl<S: KvStore> Layer<S> for RetryLayer {
    type Store = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            config: *self,
        }
    }
}

/// A store retrying temporary failures; see [`RetryLayer`].
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    config: RetryLayer,
}

impl<S> Retry<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::retry::RetryLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(RetryLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn around<T, F, Fut>(&self, call: Call<'_>, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if call.conditional {
            // Conditional: see the module docs.
            return attempt().await;
        }
        let mut retries = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_temporary() && retries < self.config.max_retries => {
                    tokio::time::sleep(self.config.backoff(retries)).await;
                    retries += 1;
                }
                result => return result,
            }
        }
    }
}

around!(Retry { get_opts, get_many_opts, put_opts, put_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts } forward { info, close });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use bytes::Bytes;
    use kv_core::{ErrorKind, KvStoreExt};
    use kv_core::{PutMode, PutOptions};

    fn retrying(flaky: &Flaky, n: u32) -> Retry<Flaky> {
        flaky.clone().with(RetryLayer::new().max_retries(n))
    }

    // Paused time: sleeps complete at once, in virtual time.
    #[tokio::test(start_paused = true)]
    async fn temporary_errors_are_retried_until_success() {
        let flaky = Flaky::new();
        let s = retrying(&flaky, 3);
        s.put("c", "k", &1).await.unwrap();
        let before = flaky.calls();
        flaky.fail_next(3);
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        assert_eq!(flaky.calls() - before, 4, "1 attempt + 3 retries");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries() {
        let flaky = Flaky::new();
        let s = retrying(&flaky, 2);
        flaky.fail_next(10);
        let err = s.put("c", "k", &1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(flaky.calls(), 3, "1 attempt + 2 retries");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let flaky = Flaky::new();
        flaky.permanent(true);
        let s = retrying(&flaky, 5);
        flaky.fail_next(10);
        assert_eq!(
            s.delete("c", "k").await.unwrap_err().kind(),
            ErrorKind::Backend
        );
        assert_eq!(flaky.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn conditional_puts_are_tried_once() {
        let flaky = Flaky::new();
        let s = retrying(&flaky, 5);
        flaky.fail_next(1);
        let opts = PutOptions::default().with_mode(PutMode::IfAbsent);
        let err = s
            .put_opts("c", "k", Bytes::from_static(b"1"), opts)
            .await
            .unwrap_err();
        assert!(err.is_temporary());
        assert_eq!(flaky.calls(), 1);
        assert!(s.put_if_absent("c", "k", &1).await.unwrap());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let ms = Duration::from_millis;
        let l = RetryLayer::new()
            .initial_delay(ms(100))
            .max_delay(ms(1000))
            .no_jitter();
        let waits: Vec<_> = (0..6).map(|n| l.backoff(n)).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(l.backoff(u32::MAX), ms(1000));
        let j = RetryLayer::new().initial_delay(ms(100)).max_delay(ms(1000));
        for n in 0..10 {
            let d = j.backoff(n);
            let base = l.backoff(n);
            assert!(d >= base / 2 && d <= base, "{n}: {d:?}");
        }
    }
}
