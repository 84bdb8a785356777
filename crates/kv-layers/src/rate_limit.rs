//! Paces operations with a token bucket: at most `n` operations per period on average, with
//! bursts of up to [`burst`](RateLimitLayer::burst) operations after a quiet spell.
//!
//! By default an operation over the limit *waits* for its turn (a `tokio::time::sleep`);
//! with [`reject`](RateLimitLayer::reject) it fails at once with a temporary
//! [`ErrorKind::Unavailable`] error ("rate limit exceeded") naming the layer, so a
//! [`retry`](crate::retry) layer above can back off.
//!
//! **What costs a token.** Every operation except `close` costs one token: a `get`, a `put`,
//! one page of a scan, `collections`, `clear`, `destroy`, `cull`. A batch (`get_many`,
//! `put_many`, `delete_many`) also costs one token by default, as it is one request to the
//! backend; with [`per_entry(true)`](RateLimitLayer::per_entry) it costs one token per key
//! or entry (at least one), capped at the burst so that a batch larger than the burst still
//! runs once the bucket is full. `close` is never limited.
//!
//! The bucket is a virtual schedule (the "generic cell rate algorithm"): each operation
//! reserves the next free slot, so waiting operations go in the order they arrived and none
//! starves. An operation cancelled while it waits does not give its slot back. The bucket is
//! shared by every clone of the wrapped store; each store the layer wraps gets a bucket of
//! its own. Time is measured with `tokio::time`, so the store must be used inside a Tokio
//! runtime with its time driver enabled.
//!
//! ```
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::rate_limit::RateLimitLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // 100 operations per second on average, up to 10 at once.
//! let layer = RateLimitLayer::new(100, Duration::from_secs(1)).burst(10);
//! let store = MemoryStore::new().with(layer);
//! store.put("c", "k", &1).await?;
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_core::{Error, ErrorKind, KvStore, Layer, Operation, Result};
use tokio::time::Instant;

use crate::around::Call;

const LAYER: &str = "rate_limit";

/// As good as never, for periods and deadlines beyond the clock.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The configuration of a [`RateLimit`] store: the rate, the burst, and whether operations
/// over the limit wait or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitLayer {
    ops: u32,
    period: Duration,
    burst: u32,
    reject: bool,
    per_entry: bool,
}

impl RateLimitLayer {
    /// At most `ops` operations per `period` on average (`ops` of 0 is treated as 1), with a
    /// burst of `ops`: after a quiet period, `ops` operations may run at once. A period longer
    /// than a century counts as a century.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::rate_limit::RateLimitLayer::new(50, Duration::from_secs(1));
    /// # let _ = layer;
    /// ```
    pub fn new(ops: u32, period: Duration) -> Self {
        let ops = ops.max(1);
        RateLimitLayer {
            ops,
            period,
            burst: ops,
            reject: false,
            per_entry: false,
        }
    }

    /// How many operations may run at once after a quiet period (0 is treated as 1; 1 means
    /// strictly one operation every `period / ops`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::rate_limit::RateLimitLayer::new(50, Duration::from_secs(1)).burst(5);
    /// # let _ = layer;
    /// ```
    pub fn burst(mut self, n: u32) -> Self {
        self.burst = n.max(1);
        self
    }

    /// Operations over the limit fail at once with a temporary [`ErrorKind::Unavailable`]
    /// error instead of waiting.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::rate_limit::RateLimitLayer::new(50, Duration::from_secs(1)).reject();
    /// # let _ = layer;
    /// ```
    pub fn reject(mut self) -> Self {
        self.reject = true;
        self
    }

    /// Whether a batch costs one token per key or entry (`true`) or one token (`false`, the
    /// default). See the [module documentation](self).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = kv_layers::rate_limit::RateLimitLayer::new(1000, Duration::from_secs(1))
    ///     .per_entry(true);
    /// # let _ = layer;
    /// ```
    pub fn per_entry(mut self, yes: bool) -> Self {
        self.per_entry = yes;
        self
    }

    /// The time one token stands for: `period / ops`, with periods capped at a century so
    /// that token arithmetic stays within the clock's range.
    fn interval(&self) -> Duration {
        self.period.min(CENTURY) / self.ops
    }
}

impl<S: KvStore> Layer<S> for RateLimitLayer {
    type Store = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            config: *self,
            bucket: Arc::new(Mutex::new(None)),
        }
    }
}

/// A store whose operations are paced; see [`RateLimitLayer`]. Clones share the bucket.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    config: RateLimitLayer,
    /// The theoretical arrival time: when the bucket will be full again if nothing else
    /// arrives. `None` until the first operation (a full bucket).
    bucket: Arc<Mutex<Option<Instant>>>,
}

impl<S> RateLimit<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::rate_limit::RateLimitLayer;
    /// let store = kv_store_memory::MemoryStore::new()
    ///     .with(RateLimitLayer::new(10, Duration::from_secs(1)));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The cost of a batch of `n` keys or entries.
    fn batch_cost(&self, n: usize) -> u32 {
        if self.config.per_entry {
            u32::try_from(n).unwrap_or(u32::MAX).max(1)
        } else {
            1
        }
    }

    /// Runs an operation once its tokens are taken (a batch's cost: see [`Self::batch_cost`]).
    async fn around<T, F, Fut>(&self, call: Call<'_>, mut run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let cost = match call.op {
            Operation::GetMany | Operation::PutMany | Operation::DeleteMany => {
                self.batch_cost(call.items)
            }
            _ => 1,
        };
        self.acquire(cost, call.op, call.collection, call.key)
            .await?;
        run().await
    }

    /// Takes `cost` tokens: waits for them, or fails if the layer rejects.
    async fn acquire(
        &self,
        cost: u32,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
    ) -> Result<()> {
        let c = &self.config;
        let interval = c.interval();
        // Capped at the burst: a bigger batch waits for a full bucket, not forever.
        let cost = cost.min(c.burst);
        let now = Instant::now();
        let ready_at = {
            let mut tat = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let start = tat.map_or(now, |t| t.max(now));
            let new_tat = later(start, tokens(interval, cost));
            // Up to `burst` tokens' worth of the schedule may be spent ahead of time.
            let ready_at = new_tat
                .checked_sub(tokens(interval, c.burst))
                .map_or(now, |t| t.max(now));
            if ready_at > now && c.reject {
                let wait = ready_at - now;
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "rate limit exceeded: {} operations per {:?} (burst {}); next free slot \
                         in {wait:?}",
                        c.ops, c.period, c.burst
                    ),
                )
                .with_context(LAYER, op, collection, key));
            }
            *tat = Some(new_tat);
            ready_at
        };
        if ready_at > now {
            tokio::time::sleep_until(ready_at).await;
        }
        Ok(())
    }
}

/// The time `n` tokens stand for; absurd configurations saturate instead of panicking.
fn tokens(interval: Duration, n: u32) -> Duration {
    interval.checked_mul(n).unwrap_or(Duration::MAX)
}

/// `t + d`, or a century from `t` if that is beyond the clock (as good as never).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(CENTURY))
        .unwrap_or(t)
}

// `close` goes straight through: closing is never held back (see the module docs).
around!(RateLimit { get_opts, get_many_opts, put_opts, put_many_opts, delete_opts, delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts, cull_opts } forward { info, close });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    /// Runs `tasks` tasks doing gets in a loop and returns how many completed by `at` (virtual
    /// time since the start).
    async fn done_by(store: RateLimit<MemoryStore>, tasks: usize, at: Duration) -> u32 {
        let done = Arc::new(AtomicU32::new(0));
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (store, done) = (store.clone(), done.clone());
            handles.push(tokio::spawn(async move {
                loop {
                    store.get::<i32>("c", "k").await.unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        tokio::time::sleep(at).await;
        let n = done.load(Ordering::SeqCst);
        for h in handles {
            h.abort();
        }
        n
    }

    // Paused time: sleeps complete as soon as every task waits, in virtual time, so the counts
    // below are exact. Instants are chosen between two slots, never on one.
    #[tokio::test(start_paused = true)]
    async fn waits_pace_operations_to_the_rate_after_the_burst() {
        // 10 per second = one slot every 100 ms; a burst of 3.
        let layer = RateLimitLayer::new(10, Duration::from_secs(1)).burst(3);
        for (at_ms, expected) in [(50, 3), (150, 4), (950, 12), (2050, 23)] {
            let store = MemoryStore::new().with(layer);
            let n = done_by(store, 4, MS * at_ms).await;
            assert_eq!(n, expected, "by {at_ms} ms");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_period_refills_the_bucket_up_to_the_burst() {
        let layer = RateLimitLayer::new(10, Duration::from_secs(1)).burst(3);
        let store = MemoryStore::new().with(layer);
        let start = Instant::now();
        for _ in 0..3 {
            store.get::<i32>("c", "k").await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst runs at once");
        store.get::<i32>("c", "k").await.unwrap();
        assert_eq!(start.elapsed(), MS * 100);
        // Ten seconds of quiet refill three tokens, not a hundred.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(done_by(store, 2, MS * 50).await, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn reject_fails_fast_with_a_temporary_error() {
        let layer = RateLimitLayer::new(10, Duration::from_secs(1))
            .burst(2)
            .reject();
        let store = MemoryStore::new().with(layer);
        store.put("c", "k", &1).await.unwrap();
        store.put("c", "k", &2).await.unwrap();
        let start = Instant::now();
        let err = store.get::<i32>("c", "k").await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "no wait");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_temporary());
        assert_eq!(err.store(), Some("rate_limit"));
        assert_eq!(err.operation(), Some(Operation::Get));
        assert_eq!((err.collection(), err.key()), (Some("c"), Some("k")));
        assert!(err.to_string().contains("rate limit exceeded"), "{err}");
        assert!(err.to_string().contains("100ms"), "{err}");
        // A rejected operation takes no slot: the next one is free 100 ms after the second.
        tokio::time::advance(MS * 99).await;
        assert!(store.get::<i32>("c", "k").await.is_err());
        tokio::time::advance(MS).await;
        assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert!(store.delete("c", "k").await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn batches_cost_one_token_or_one_per_entry() {
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let per_op = RateLimitLayer::new(10, Duration::from_secs(1))
            .burst(5)
            .reject();
        let store = MemoryStore::new().with(per_op);
        for _ in 0..5 {
            store.get_many::<i32>("c", &keys).await.unwrap();
        }
        assert!(store.get_many::<i32>("c", &keys).await.is_err());

        let store = MemoryStore::new().with(per_op.per_entry(true));
        store.get_many::<i32>("c", &keys[..2]).await.unwrap();
        store.delete_many("c", &keys[..3]).await.unwrap();
        let err = store.get::<i32>("c", "k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        // An empty batch costs one token; a batch above the burst costs the burst.
        tokio::time::advance(Duration::from_secs(1)).await;
        store.get_many::<i32>("c", &[]).await.unwrap();
        assert!(store.get_many::<i32>("c", &keys).await.is_err());
        let waiting = MemoryStore::new().with(
            RateLimitLayer::new(10, Duration::from_secs(1))
                .burst(5)
                .per_entry(true),
        );
        let many: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let start = Instant::now();
        waiting.get_many::<i32>("c", &many).await.unwrap();
        waiting.get_many::<i32>("c", &many).await.unwrap();
        assert_eq!(
            start.elapsed(),
            MS * 500,
            "the second batch waits for a full bucket"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_the_bucket_and_close_is_free() {
        let layer = RateLimitLayer::new(1, Duration::from_secs(60)).reject();
        let store = MemoryStore::new().with(layer);
        store.collections().await.unwrap();
        assert!(store.clone().cull().await.is_err());
        // Another store wrapped by the same layer has its own bucket.
        MemoryStore::new().with(layer).cull().await.unwrap();
        store.close().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_periods_do_not_panic() {
        let layer = RateLimitLayer::new(1, Duration::MAX)
            .burst(u32::MAX)
            .reject();
        let store = MemoryStore::new().with(layer);
        store.put("c", "k", &1).await.unwrap();
        let layer = RateLimitLayer::new(1, Duration::MAX).reject();
        let store = MemoryStore::new().with(layer);
        store.put("c", "k", &1).await.unwrap();
        assert!(store.put("c", "k", &1).await.is_err());
    }

    #[test]
    fn zero_rate_and_burst_mean_one() {
        let l = RateLimitLayer::new(0, Duration::from_secs(1)).burst(0);
        assert_eq!((l.ops, l.burst), (1, 1));
        assert_eq!(l.interval(), Duration::from_secs(1));
    }
}
