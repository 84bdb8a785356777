//! Stops calling a store that keeps failing: after a number of consecutive temporary failures
//! the circuit *opens*, and every operation fails fast, without reaching the store, until a
//! cool-down has passed.
//!
//! A store that is down makes every caller wait for its own timeout and piles retries on a
//! backend that is trying to recover. The breaker turns that into an immediate error:
//!
//! - **Closed** (the normal state): operations go to the store. A failure whose error is
//!   [temporary](kv_core::Error::is_temporary) (unreachable, overloaded, timed out) adds one to
//!   a count of consecutive failures; any other outcome resets it. When the count reaches the
//!   [failure threshold](CircuitBreakerLayer::failure_threshold) (default 5), the circuit opens.
//! - **Open**: every operation fails at once with a temporary [`ErrorKind::Unavailable`] error
//!   naming the layer and saying how long the circuit stays open. After the
//!   [cool-down](CircuitBreakerLayer::cool_down) (default 30 s) it is half-open.
//! - **Half-open**: the next operation is let through as a trial; the others fail fast while
//!   it runs. If the trial does not fail with a temporary error, the circuit closes; if it does,
//!   it opens for another cool-down. A trial that is cancelled (its future dropped) leaves the
//!   circuit half-open, so the next operation becomes the trial.
//!
//! Permanent errors ([`ErrorKind::InvalidKey`], [`ErrorKind::ConditionFailed`],
//! [`ErrorKind::Corrupt`], ...) do not count as failures: the store answered, it is up. They
//! reset the count like a success does.
//!
//! The state is shared by every clone of the wrapped store (each store the layer wraps gets its
//! own circuit, as each is a backend of its own). [`CircuitBreaker::state`] tells the current
//! state, for health checks and metrics. `close` is never blocked: a store that is shut down
//! must release its resources whatever its circuit says.
//!
//! Put the breaker *below* a [`retry`](crate::retry) layer (`.with(CircuitBreakerLayer::new())`
//! then `.with(RetryLayer::new())`) so that retries of an open circuit cost nothing; its error
//! is temporary, so retries with a backoff longer than the cool-down eventually reach the store
//! again. Time is measured with `tokio::time`, so the store must be used inside a Tokio runtime.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let layer = CircuitBreakerLayer::new()
//!     .failure_threshold(3)
//!     .cool_down(Duration::from_secs(10));
//! let store = MemoryStore::new().with(layer);
//! store.put("c", "k", &1).await?;
//! assert_eq!(store.state(), CircuitState::Closed);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kv_core::{Error, ErrorKind, KvStore, Layer, Result};
use tokio::time::Instant;

use crate::around::Call;

const LAYER: &str = "circuit_breaker";

/// The state of a circuit, as [`CircuitBreaker::state`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Operations go to the store.
    Closed,
    /// Operations fail fast until the cool-down has passed.
    Open,
    /// The cool-down has passed: the next operation is a trial (or one is running, and the
    /// others fail fast).
    HalfOpen,
}

/// The configuration of a [`CircuitBreaker`] store: how many consecutive temporary failures
/// open the circuit, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreakerLayer {
    failure_threshold: u32,
    cool_down: Duration,
}

impl Default for CircuitBreakerLayer {
    fn default() -> Self {
        CircuitBreakerLayer {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

impl CircuitBreakerLayer {
    /// A breaker that opens after 5 consecutive temporary failures, for 30 s.
    ///
    /// ```
    /// let layer = kv_layers::circuit_breaker::CircuitBreakerLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many consecutive temporary failures open the circuit (0 is treated as 1).
    ///
    /// ```
    /// let layer = kv_layers::circuit_breaker::CircuitBreakerLayer::new().failure_threshold(10);
    /// # let _ = layer;
    /// ```
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n.max(1);
        self
    }

    /// How long the circuit stays open before a trial operation is let through.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::circuit_breaker::CircuitBreakerLayer::new()
    ///     .cool_down(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn cool_down(mut self, d: Duration) -> Self {
        self.cool_down = d;
        self
    }
}

impl<S: KvStore> Layer<S> for CircuitBreakerLayer {
    type Store = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker {
            inner,
            breaker: Arc::new(Breaker {
                config: *self,
                phase: Mutex::new(Phase::Closed { failures: 0 }),
                healthy: AtomicBool::new(true),
            }),
        }
    }
}

/// A store behind a circuit breaker; see [`CircuitBreakerLayer`]. Clones share the circuit.
#[derive(Clone, Debug)]
pub struct CircuitBreaker<S> {
    inner: S,
    breaker: Arc<Breaker>,
}

#[derive(Debug)]
struct Breaker {
    config: CircuitBreakerLayer,
    phase: Mutex<Phase>,
    /// True while the phase is `Closed { failures: 0 }` (written under the lock): the common
    /// case then admits and records a success without taking the lock, so a healthy store's
    /// concurrent calls never serialise on it.
    healthy: AtomicBool,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Closed {
        failures: u32,
    },
    /// Failing fast until `until`; half-open from then on, until a call takes the trial.
    Open {
        until: Instant,
    },
    /// One trial call is running.
    Trial,
}

impl Breaker {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        // Nothing panics while the lock is held; a poisoned lock still holds a valid phase.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> CircuitState {
        match *self.phase() {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { until } if Instant::now() < until => CircuitState::Open,
            Phase::Open { .. } | Phase::Trial => CircuitState::HalfOpen,
        }
    }

    /// Lets a call through (as a trial if the circuit is half-open) or says why not.
    fn admit(&self) -> Result<Permit<'_>> {
        if self.healthy.load(Ordering::Acquire) {
            return Ok(Permit {
                breaker: self,
                trial: false,
                recorded: false,
            });
        }
        let mut phase = self.phase();
        let trial = match *phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "circuit open after {} consecutive temporary failures: failing fast \
                             for another {:?} (cool-down {:?})",
                            self.config.failure_threshold,
                            until - now,
                            self.config.cool_down
                        ),
                    ));
                }
                *phase = Phase::Trial;
                true
            }
            Phase::Trial => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "circuit half-open: failing fast while a trial operation checks whether \
                     the store has recovered",
                ));
            }
        };
        Ok(Permit {
            breaker: self,
            trial,
            recorded: false,
        })
    }

    fn open_until(&self) -> Instant {
        let now = Instant::now();
        // A cool-down too long for the clock is as good as forever.
        now.checked_add(self.config.cool_down)
            .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
            .unwrap_or(now)
    }
}

/// A call let through; records its outcome (or, for a cancelled trial, reopens the trial).
struct Permit<'a> {
    breaker: &'a Breaker,
    trial: bool,
    recorded: bool,
}

impl Permit<'_> {
    fn record(mut self, failed: bool) {
        self.recorded = true;
        let b = self.breaker;
        if !failed && !self.trial && b.healthy.load(Ordering::Acquire) {
            return; // Closed with no failures to reset.
        }
        let mut phase = b.phase();
        match (&mut *phase, self.trial) {
            (Phase::Trial, true) if failed => {
                *phase = Phase::Open {
                    until: b.open_until(),
                }
            }
            (Phase::Trial, true) => *phase = Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, false) if failed => {
                *failures += 1;
                if *failures >= b.config.failure_threshold {
                    *phase = Phase::Open {
                        until: b.open_until(),
                    };
                }
            }
            (Phase::Closed { failures }, false) => *failures = 0,
            // A call let through before the circuit opened: its outcome is old news.
            _ => {}
        }
        b.healthy.store(
            matches!(*phase, Phase::Closed { failures: 0 }),
            Ordering::Release,
        );
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            // The trial was cancelled: half-open again, so the next call is the trial.
            *self.breaker.phase() = Phase::Open {
                until: Instant::now(),
            };
        }
    }
}

impl<S> CircuitBreaker<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::circuit_breaker::CircuitBreakerLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(CircuitBreakerLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The state of the circuit now (shared by every clone of this store).
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = kv_store_memory::MemoryStore::new().with(CircuitBreakerLayer::new());
    /// assert_eq!(store.state(), CircuitState::Closed);
    /// # });
    /// ```
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    async fn around<T, F, Fut>(&self, call: Call<'_>, mut run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let permit = self
            .breaker
            .admit()
            .map_err(|e| e.with_context(LAYER, call.op, call.collection, call.key))?;
        let result = run().await;
        permit.record(result.as_ref().is_err_and(Error::is_temporary));
        result
    }
}

// `close` goes straight through: closing is never held back (see the module docs).
around!(CircuitBreaker { get_opts, get_many_opts, put_opts, put_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts } forward { info, close });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use kv_core::KvStoreExt;
    use kv_core::Operation;

    const COOL_DOWN: Duration = Duration::from_secs(30);

    fn breaker(flaky: &Flaky, threshold: u32) -> CircuitBreaker<Flaky> {
        flaky.clone().with(
            CircuitBreakerLayer::new()
                .failure_threshold(threshold)
                .cool_down(COOL_DOWN),
        )
    }

    /// Fails `n` calls through `s` with the flaky store's injected error.
    async fn fail_calls(s: &CircuitBreaker<Flaky>, flaky: &Flaky, n: u32) {
        flaky.fail_next(n);
        for _ in 0..n {
            let err = s.get::<i32>("c", "k").await.unwrap_err();
            assert_eq!(err.store(), Some("flaky"), "{err}");
        }
    }

    // Paused time: the clock only moves when the test advances it.
    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_fails_fast() {
        let flaky = Flaky::new();
        let s = breaker(&flaky, 3);
        fail_calls(&s, &flaky, 2).await;
        assert_eq!(s.state(), CircuitState::Closed);
        fail_calls(&s, &flaky, 1).await;
        assert_eq!(s.state(), CircuitState::Open);

        let calls = flaky.calls();
        let err = s.put("c", "k", &1).await.unwrap_err();
        assert_eq!(
            flaky.calls(),
            calls,
            "an open circuit does not call the store"
        );
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_temporary());
        assert_eq!(err.store(), Some("circuit_breaker"));
        assert_eq!(err.operation(), Some(Operation::Put));
        assert_eq!((err.collection(), err.key()), (Some("c"), Some("k")));
        let msg = err.to_string();
        assert!(msg.contains("circuit open") && msg.contains("30s"), "{msg}");
        // Every operation is guarded, not only reads and writes.
        assert!(s.collections().await.is_err());
        assert!(s.destroy().await.is_err());
        assert_eq!(flaky.calls(), calls);

        // The error says how long is left.
        tokio::time::advance(Duration::from_secs(20)).await;
        let err = s.get::<i32>("c", "k").await.unwrap_err();
        assert!(err.to_string().contains("another 10s"), "{err}");
        assert_eq!(s.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_trial_closes_the_circuit() {
        let flaky = Flaky::new();
        let s = breaker(&flaky, 2);
        fail_calls(&s, &flaky, 2).await;
        tokio::time::advance(COOL_DOWN).await;
        assert_eq!(s.state(), CircuitState::HalfOpen);
        let calls = flaky.calls();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), None);
        assert_eq!(flaky.calls(), calls + 1);
        assert_eq!(s.state(), CircuitState::Closed);
        // Closed again with a fresh count: one failure does not reopen it.
        fail_calls(&s, &flaky, 1).await;
        assert_eq!(s.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_for_another_cool_down() {
        let flaky = Flaky::new();
        let s = breaker(&flaky, 2);
        fail_calls(&s, &flaky, 2).await;
        tokio::time::advance(COOL_DOWN).await;
        fail_calls(&s, &flaky, 1).await;
        assert_eq!(s.state(), CircuitState::Open);
        tokio::time::advance(COOL_DOWN - Duration::from_secs(1)).await;
        assert_eq!(s.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(s.state(), CircuitState::HalfOpen);
        s.put("c", "k", &1).await.unwrap();
        assert_eq!(s.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn one_trial_at_a_time_and_a_cancelled_trial_frees_the_slot() {
        let flaky = Flaky::new();
        let s = breaker(&flaky, 1);
        fail_calls(&s, &flaky, 1).await;
        tokio::time::advance(COOL_DOWN).await;

        flaky.hang(true);
        let trial = tokio::spawn({
            let s = s.clone();
            async move { s.get::<i32>("c", "k").await }
        });
        while flaky.calls() < 2 {
            tokio::task::yield_now().await;
        }
        // A clone shares the circuit: the trial is running, so it fails fast.
        // Bounded, so that a regression fails instead of hanging in the flaky store.
        let second = s.clone();
        let second = tokio::time::timeout(COOL_DOWN, second.get::<i32>("c", "k"));
        let err = second.await.expect("fails fast").unwrap_err();
        assert!(err.to_string().contains("half-open"), "{err}");
        assert_eq!(flaky.calls(), 2);
        assert_eq!(s.state(), CircuitState::HalfOpen);

        trial.abort();
        assert!(trial.await.unwrap_err().is_cancelled());
        flaky.hang(false);
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), None);
        assert_eq!(s.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_and_successes_reset_the_count() {
        let flaky = Flaky::new();
        let s = breaker(&flaky, 3);
        fail_calls(&s, &flaky, 2).await;
        flaky.permanent(true);
        for _ in 0..10 {
            fail_calls(&s, &flaky, 1).await;
        }
        assert_eq!(s.state(), CircuitState::Closed);
        flaky.permanent(false);
        fail_calls(&s, &flaky, 2).await;
        s.put("c", "k", &1).await.unwrap();
        fail_calls(&s, &flaky, 2).await;
        assert_eq!(s.state(), CircuitState::Closed);
        // Misses and condition failures are answers too.
        assert!(!s.put_if_absent("c", "k", &2).await.unwrap());
        fail_calls(&s, &flaky, 3).await;
        assert_eq!(s.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn close_is_never_blocked() {
        let flaky = Flaky::new();
        let s = breaker(&flaky, 1);
        fail_calls(&s, &flaky, 1).await;
        assert_eq!(s.state(), CircuitState::Open);
        s.close().await.unwrap();
    }

    #[test]
    fn zero_threshold_means_one() {
        let layer = CircuitBreakerLayer::new().failure_threshold(0);
        assert_eq!(layer.failure_threshold, 1);
    }
}
