//! Fault injection for tests: fails a share of operations with a chosen error, and delays
//! operations by a fixed or random latency, so that a program's error handling, retries,
//! timeouts and circuit breakers can be tested against a store that misbehaves on purpose.
//!
//! For each operation the layer applies to (every one by default, `close` included; see
//! [`only`](ChaosLayer::only)):
//!
//! 1. it sleeps for the [latency](ChaosLayer::latency), if one is set (a fixed duration, or
//!    one drawn uniformly from a [range](ChaosLayer::latency_between));
//! 2. with the [error rate](ChaosLayer::error_rate) as probability, it fails with an error of
//!    the [chosen kind](ChaosLayer::error_kind) (default [`ErrorKind::Unavailable`]), temporary
//!    or not as [configured](ChaosLayer::temporary), naming the layer, operation, collection
//!    and key, **without calling the store** (the operation is not applied);
//! 3. otherwise it calls the store.
//!
//! **Deterministic with a seed.** Draws come from a SplitMix64 generator (no `rand`
//! dependency; the faults need spread, not secrecy) shared by every clone of the wrapped
//! store. With [`seed`](ChaosLayer::seed), the same sequence of operations meets the same
//! faults on every run; without one, the seed is random. (Operations racing in several tasks
//! take their draws in the order they happen to run.) [`Chaos::injected_errors`] counts the
//! errors injected so far.
//!
//! Sleeps use `tokio::time`, so the store must be used inside a Tokio runtime with its time
//! driver enabled; with paused time (`#[tokio::test(start_paused = true)]`) latency costs no
//! real time. Not meant for production stacks.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::{ErrorKind, KvStoreExt, Operation};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::chaos::ChaosLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Every put fails; reads work, after 0–2 ms.
//! let layer = ChaosLayer::new()
//!     .error_rate(1.0)
//!     .only([Operation::Put])
//!     .latency_between(Duration::ZERO, Duration::from_millis(2))
//!     .seed(42);
//! let store = MemoryStore::new().with(layer);
//! let err = store.put("c", "k", &1).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Unavailable);
//! assert!(err.is_temporary());
//! assert_eq!(store.get::<i32>("c", "k").await?, None);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_core::{Error, ErrorKind, KvStore, Layer, Operation, Result};

use crate::around::Call;

const LAYER: &str = "chaos";

/// How long each operation is delayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Latency {
    None,
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Between(Duration, Duration),
}

/// The configuration of a [`Chaos`] store: which faults, how often, on which operations.
#[derive(Clone, Debug, PartialEq)]
pub struct ChaosLayer {
    error_rate: f64,
    error_kind: ErrorKind,
    temporary: Option<bool>,
    latency: Latency,
    /// `None`: every operation.
    only: Option<Vec<Operation>>,
    seed: Option<u64>,
}

impl Default for ChaosLayer {
    fn default() -> Self {
        ChaosLayer {
            error_rate: 0.0,
            error_kind: ErrorKind::Unavailable,
            temporary: None,
            latency: Latency::None,
            only: None,
            seed: None,
        }
    }
}

impl ChaosLayer {
    /// A layer that injects nothing yet: no errors, no latency. Add faults with the other
    /// methods.
    ///
    /// ```
    /// let layer = kv_layers::chaos::ChaosLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The probability that an operation fails, from 0 (never, the default) to 1 (always).
    /// Values outside that range are clamped; NaN counts as 0.
    ///
    /// ```
    /// let layer = kv_layers::chaos::ChaosLayer::new().error_rate(0.1);
    /// # let _ = layer;
    /// ```
    pub fn error_rate(mut self, p: f64) -> Self {
        self.error_rate = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }

    /// The kind of the injected errors (default [`ErrorKind::Unavailable`]).
    ///
    /// ```
    /// use kv_core::ErrorKind;
    /// let layer = kv_layers::chaos::ChaosLayer::new().error_rate(0.1).error_kind(ErrorKind::Timeout);
    /// # let _ = layer;
    /// ```
    pub fn error_kind(mut self, kind: ErrorKind) -> Self {
        self.error_kind = kind;
        self
    }

    /// Whether injected errors are temporary (retry may help). By default they are as
    /// temporary as their kind usually is: `Unavailable` and `Timeout` are, the others not.
    ///
    /// ```
    /// use kv_core::ErrorKind;
    /// let layer = kv_layers::chaos::ChaosLayer::new()
    ///     .error_rate(0.1)
    ///     .error_kind(ErrorKind::Backend)
    ///     .temporary(true);
    /// # let _ = layer;
    /// ```
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = Some(temporary);
        self
    }

    /// Delays every operation by `d`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::chaos::ChaosLayer::new().latency(Duration::from_millis(20));
    /// # let _ = layer;
    /// ```
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = Latency::Fixed(d);
        self
    }

    /// Delays every operation by a duration drawn uniformly between `min` and `max`
    /// (inclusive; the bounds may come in either order).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::chaos::ChaosLayer::new()
    ///     .latency_between(Duration::from_millis(5), Duration::from_millis(50));
    /// # let _ = layer;
    /// ```
    pub fn latency_between(mut self, min: Duration, max: Duration) -> Self {
        self.latency = Latency::Between(min.min(max), min.max(max));
        self
    }

    /// Injects faults only into these operations (the others pass through untouched and take
    /// no draws). By default every operation is affected.
    ///
    /// ```
    /// use kv_core::Operation;
    /// let layer = kv_layers::chaos::ChaosLayer::new()
    ///     .error_rate(0.5)
    ///     .only([Operation::Put, Operation::PutMany]);
    /// # let _ = layer;
    /// ```
    pub fn only(mut self, operations: impl IntoIterator<Item = Operation>) -> Self {
        self.only = Some(operations.into_iter().collect());
        self
    }

    /// Makes the faults reproducible: the same seed and the same sequence of operations give
    /// the same faults.
    ///
    /// ```
    /// let layer = kv_layers::chaos::ChaosLayer::new().error_rate(0.1).seed(7);
    /// # let _ = layer;
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl<S: KvStore> Layer<S> for ChaosLayer {
    type Store = Chaos<S>;

    fn layer(&self, inner: S) -> Chaos<S> {
        let seed = self.seed.unwrap_or_else(random_seed);
        Chaos {
            inner,
            config: Arc::new(self.clone()),
            state: Arc::new(State {
                rng: SplitMix64(AtomicU64::new(seed)),
                injected: AtomicU64::new(0),
            }),
        }
    }
}

/// A seed from the standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// SplitMix64 (Steele, Lea and Flood): a counter through a bit mixer. One atomic add per
/// draw, so clones share one sequence without a lock.
#[derive(Debug)]
struct SplitMix64(AtomicU64);

impl SplitMix64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    fn next(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    fn unit(&self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[derive(Debug)]
struct State {
    rng: SplitMix64,
    injected: AtomicU64,
}

/// A store that injects faults; see [`ChaosLayer`]. Clones share the random sequence and the
/// count of injected errors.
#[derive(Clone, Debug)]
pub struct Chaos<S> {
    inner: S,
    config: Arc<ChaosLayer>,
    state: Arc<State>,
}

impl<S> Chaos<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::chaos::ChaosLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(ChaosLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// How many errors the layer has injected (in this store and its clones).
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::chaos::ChaosLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(ChaosLayer::new());
    /// assert_eq!(store.injected_errors(), 0);
    /// ```
    pub fn injected_errors(&self) -> u64 {
        self.state.injected.load(Ordering::Relaxed)
    }

    /// The latency for one operation.
    fn delay(&self) -> Duration {
        match self.config.latency {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Between(min, max) => {
                let span = u64::try_from((max - min).as_nanos()).unwrap_or(u64::MAX);
                let extra = match span.checked_add(1) {
                    Some(n) => self.state.rng.next() % n,
                    None => self.state.rng.next(),
                };
                min.saturating_add(Duration::from_nanos(extra))
            }
        }
    }

    /// Applies the faults to one operation, then runs `call` unless an error was injected.
    async fn around<T, F, Fut>(&self, call: Call<'_>, mut run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let c = &*self.config;
        if c.only.as_ref().is_some_and(|ops| !ops.contains(&call.op)) {
            return run().await;
        }
        let delay = self.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if c.error_rate > 0.0 && self.state.rng.unit() < c.error_rate {
            self.state.injected.fetch_add(1, Ordering::Relaxed);
            let mut err = Error::new(c.error_kind, "injected failure (chaos layer)");
            if let Some(temporary) = c.temporary {
                err = err.temporary(temporary);
            }
            return Err(err.with_context(LAYER, call.op, call.collection, call.key));
        }
        run().await
    }
}

around!(Chaos { get_opts, get_many_opts, put_opts, put_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts, close } forward { info });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::retry::RetryLayer;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;
    use tokio::time::Instant;

    /// Which of `n` gets through `store` failed, in order.
    async fn failures<S: KvStore>(store: &S, n: usize) -> Vec<bool> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(store.get::<i32>("c", "k").await.is_err());
        }
        out
    }

    #[tokio::test]
    async fn the_error_rate_holds_over_many_calls() {
        for p in [0.0, 0.05, 0.25, 0.5, 1.0] {
            let store = MemoryStore::new().with(ChaosLayer::new().error_rate(p).seed(7));
            let failed = failures(&store, 10_000).await;
            let n = failed.iter().filter(|f| **f).count() as f64;
            // Four standard deviations of a binomial(10 000, p): a seed that lands outside
            // would be a broken generator, not bad luck.
            let sigma = (10_000.0 * p * (1.0 - p)).sqrt();
            assert!((n - 10_000.0 * p).abs() <= 4.0 * sigma, "p {p}: {n} errors");
            assert_eq!(store.injected_errors(), n as u64);
        }
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_faults() {
        let layer = ChaosLayer::new().error_rate(0.3);
        let a = MemoryStore::new().with(layer.clone().seed(1));
        let b = MemoryStore::new().with(layer.clone().seed(1));
        let c = MemoryStore::new().with(layer.seed(2));
        let (fa, fb, fc) = (
            failures(&a, 200).await,
            failures(&b, 200).await,
            failures(&c, 200).await,
        );
        assert_eq!(fa, fb);
        assert_ne!(fa, fc);
        // Clones share the sequence: taking turns gives the same pattern as one store.
        let d = MemoryStore::new().with(ChaosLayer::new().error_rate(0.3).seed(1));
        let d2 = d.clone();
        let mut fd = Vec::new();
        for i in 0..200 {
            let s = if i % 2 == 0 { &d } else { &d2 };
            fd.push(s.get::<i32>("c", "k").await.is_err());
        }
        assert_eq!(fa, fd);
    }

    #[tokio::test]
    async fn injected_errors_name_the_layer_and_skip_the_store() {
        let memory = MemoryStore::new();
        let layer = ChaosLayer::new()
            .error_rate(1.0)
            .error_kind(ErrorKind::Backend);
        let store = memory.clone().with(layer.clone());
        let err = store.put("c", "k", &1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(!err.is_temporary(), "Backend is permanent by default");
        assert_eq!(err.store(), Some("chaos"));
        assert_eq!(err.operation(), Some(Operation::Put));
        assert_eq!((err.collection(), err.key()), (Some("c"), Some("k")));
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(
            memory.get::<i32>("c", "k").await.unwrap(),
            None,
            "not applied"
        );
        // Every operation is affected, close included.
        assert!(store.collections().await.is_err());
        assert!(store.cull().await.is_err());
        assert!(store.close().await.is_err());
        assert_eq!(store.injected_errors(), 4);
        let store = memory.clone().with(layer.temporary(true));
        assert!(store.delete("c", "k").await.unwrap_err().is_temporary());
    }

    #[tokio::test]
    async fn only_the_chosen_operations_are_affected() {
        let layer = ChaosLayer::new()
            .error_rate(1.0)
            .only([Operation::Put, Operation::Delete]);
        let store = MemoryStore::new().with(layer);
        assert!(store.put("c", "k", &1).await.is_err());
        assert!(store.delete("c", "k").await.is_err());
        store.put_many("c", &[("k", 1)]).await.unwrap();
        assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(1));
        assert_eq!(store.collections().await.unwrap(), ["c"]);
        store.close().await.unwrap();
    }

    // Paused time: latency passes in virtual time, and is measured exactly.
    #[tokio::test(start_paused = true)]
    async fn latency_is_fixed_or_drawn_from_the_range() {
        let ms = Duration::from_millis;
        let store = MemoryStore::new().with(ChaosLayer::new().latency(ms(50)));
        let start = Instant::now();
        store.put("c", "k", &1).await.unwrap();
        assert_eq!(start.elapsed(), ms(50));

        let layer = ChaosLayer::new().latency_between(ms(20), ms(10)).seed(3);
        let store = MemoryStore::new().with(layer);
        let mut slept = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let start = Instant::now();
            store.get::<i32>("c", "k").await.unwrap();
            let d = start.elapsed();
            assert!(d >= ms(10) && d <= ms(20), "{d:?}");
            slept.insert(d);
        }
        // Tokio's timer counts whole milliseconds; the draws themselves are finer.
        assert!(slept.len() >= 8, "{} distinct sleeps", slept.len());
        let drawn: std::collections::BTreeSet<_> = (0..100).map(|_| store.delay()).collect();
        assert_eq!(drawn.len(), 100);
        assert!(drawn.iter().all(|d| *d >= ms(10) && *d <= ms(20)));

        // Latency is only added to the chosen operations.
        let layer = ChaosLayer::new().latency(ms(50)).only([Operation::Put]);
        let store = MemoryStore::new().with(layer);
        let start = Instant::now();
        store.get::<i32>("c", "k").await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_layer_above_recovers() {
        let chaos = MemoryStore::new().with(ChaosLayer::new().error_rate(0.5).seed(11));
        let store = chaos.clone().with(RetryLayer::new().max_retries(30));
        for i in 0..200 {
            store.put("c", &format!("k{i}"), &i).await.unwrap();
            assert_eq!(store.get("c", &format!("k{i}")).await.unwrap(), Some(i));
        }
        assert!(chaos.injected_errors() > 100, "{}", chaos.injected_errors());
        // Permanent injected errors are not retried.
        let layer = ChaosLayer::new().error_rate(1.0).temporary(false);
        let chaos = MemoryStore::new().with(layer);
        let store = chaos.clone().with(RetryLayer::new().max_retries(30));
        assert!(store.get::<i32>("c", "k").await.is_err());
        assert_eq!(chaos.injected_errors(), 1);
    }

    #[test]
    fn rates_are_clamped() {
        assert_eq!(ChaosLayer::new().error_rate(f64::NAN).error_rate, 0.0);
        assert_eq!(ChaosLayer::new().error_rate(-1.0).error_rate, 0.0);
        assert_eq!(ChaosLayer::new().error_rate(7.0).error_rate, 1.0);
    }

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs for seed 0 of the reference implementation (Vigna's splitmix64.c).
        let rng = SplitMix64(AtomicU64::new(0));
        assert_eq!(rng.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next(), 0x06C4_5D18_8009_454F);
        let unit = rng.unit();
        assert!((0.0..1.0).contains(&unit));
    }
}
