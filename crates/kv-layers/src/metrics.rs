//! Records operation counts, outcomes, durations, hits and misses with the
//! [`metrics`] facade, for Prometheus, StatsD, OpenTelemetry or any other exporter.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `kv_operations_total` | counter | `store`, `operation`, `outcome` | operations finished; `outcome` is `"ok"` or `"error"` |
//! | `kv_operation_duration_seconds` | histogram | `store`, `operation` | how long each operation took |
//! | `kv_errors_total` | counter | `store`, `operation`, `kind` | failures by [`ErrorKind`](kv_core::ErrorKind) (`"timeout"`, `"condition failed"`, ...) |
//! | `kv_hits_total` | counter | `store`, `operation` | reads that found a live entry: `get`, each key of `get_many`, `ttl` |
//! | `kv_misses_total` | counter | `store`, `operation` | reads that found nothing |
//!
//! `store` is the inner store's kind (`"memory"`, `"redis"`, ...); `operation` is `get`,
//! `get_many`, `put`, `put_many`, `delete`, `delete_many`, `ttl`, `scan`, `collections`,
//! `clear`, `destroy`, `cull` or `close`. The `kv` prefix is configurable
//! ([`MetricsLayer::prefix`]). Collections and keys are not labels: their number is unbounded,
//! which metric backends handle badly — the [`statistics`](crate::statistics) layer counts per
//! collection in process.
//!
//! Metrics go to whichever recorder is current when an operation finishes (the global one
//! installed by an exporter, or a [local one](::metrics::with_local_recorder)); without one they
//! cost next to nothing. [`MetricsLayer::describe`] registers units and descriptions with the
//! current recorder.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::metrics::MetricsLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // An exporter (e.g. metrics-exporter-prometheus) installs the global recorder first.
//! let layer = MetricsLayer::new().prefix("app_kv");
//! layer.describe();
//! let store = MemoryStore::new().with(layer);
//! store.put("users", "alice", &30).await?; // app_kv_operations_total{operation="put",outcome="ok",...}
//! store.get::<u32>("users", "bob").await?; // ... and app_kv_misses_total{operation="get",...}
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;
use std::time::Instant;

use ::metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry,
    GetOptions, KvStore, Layer, Operation, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};

/// The default prefix of every metric name.
pub const DEFAULT_PREFIX: &str = "kv";

/// Where the layer's metrics come from, for recorders that filter on it.
static METADATA: Metadata<'static> =
    Metadata::new("kv", ::metrics::Level::INFO, Some(module_path!()));

/// The names of the layer's metrics, with their prefix.
#[derive(Clone, Debug)]
struct Names {
    operations: KeyName,
    duration: KeyName,
    errors: KeyName,
    hits: KeyName,
    misses: KeyName,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let name = |suffix: &str| {
            let full = if prefix.is_empty() {
                suffix.to_owned()
            } else {
                format!("{prefix}_{suffix}")
            };
            KeyName::from(full)
        };
        Names {
            operations: name("operations_total"),
            duration: name("operation_duration_seconds"),
            errors: name("errors_total"),
            hits: name("hits_total"),
            misses: name("misses_total"),
        }
    }
}

/// The configuration of a [`Metrics`] store: the metric names' prefix.
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    names: Names,
}

impl Default for MetricsLayer {
    fn default() -> Self {
        MetricsLayer {
            names: Names::new(DEFAULT_PREFIX),
        }
    }
}

impl MetricsLayer {
    /// Metrics named `kv_*`.
    ///
    /// ```
    /// let layer = kv_layers::metrics::MetricsLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Names metrics `<prefix>_operations_total`, ... instead of `kv_...`; an empty prefix
    /// gives `operations_total`, ...
    ///
    /// ```
    /// let layer = kv_layers::metrics::MetricsLayer::new().prefix("sessions_kv");
    /// # let _ = layer;
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.names = Names::new(prefix);
        self
    }

    /// Registers the unit and description of each metric with the current recorder (call it
    /// once the exporter is installed).
    ///
    /// ```
    /// kv_layers::metrics::MetricsLayer::new().describe();
    /// ```
    pub fn describe(&self) {
        let n = &self.names;
        ::metrics::with_recorder(|r| {
            let counters = [
                (
                    &n.operations,
                    "kv operations finished, by outcome (ok or error)",
                ),
                (&n.errors, "kv operations that failed, by error kind"),
                (
                    &n.hits,
                    "kv reads that found a live entry (per key for batches)",
                ),
                (
                    &n.misses,
                    "kv reads that found nothing (per key for batches)",
                ),
            ];
            for (name, text) in counters {
                r.describe_counter(name.clone(), Some(Unit::Count), SharedString::from(text));
            }
            r.describe_histogram(
                n.duration.clone(),
                Some(Unit::Seconds),
                SharedString::from("duration of kv operations"),
            );
        });
    }
}

/// The metric keys of one operation of one store, built once.
#[derive(Debug)]
struct OpKeys {
    operation: Operation,
    ok: Key,
    error: Key,
    duration: Key,
    hits: Key,
    misses: Key,
}

impl OpKeys {
    fn new(names: &Names, store: &'static str, operation: Operation) -> Self {
        let op = operation.as_str();
        let labels = |extra: Option<(&'static str, &'static str)>| {
            let mut l = vec![
                Label::from_static_parts("store", store),
                Label::from_static_parts("operation", op),
            ];
            if let Some((k, v)) = extra {
                l.push(Label::from_static_parts(k, v));
            }
            l
        };
        let key = |name: &KeyName, extra| Key::from_parts(name.clone(), labels(extra));
        OpKeys {
            operation,
            ok: key(&names.operations, Some(("outcome", "ok"))),
            error: key(&names.operations, Some(("outcome", "error"))),
            duration: key(&names.duration, None),
            hits: key(&names.hits, None),
            misses: key(&names.misses, None),
        }
    }
}

/// Every metric key of a store.
#[derive(Debug)]
struct Keys {
    store: &'static str,
    errors: KeyName,
    get: OpKeys,
    get_many: OpKeys,
    put: OpKeys,
    put_many: OpKeys,
    delete: OpKeys,
    delete_many: OpKeys,
    ttl: OpKeys,
    scan: OpKeys,
    collections: OpKeys,
    clear: OpKeys,
    destroy: OpKeys,
    cull: OpKeys,
    close: OpKeys,
}

impl Keys {
    fn new(names: &Names, store: &'static str) -> Self {
        let op = |operation| OpKeys::new(names, store, operation);
        Keys {
            store,
            errors: names.errors.clone(),
            get: op(Operation::Get),
            get_many: op(Operation::GetMany),
            put: op(Operation::Put),
            put_many: op(Operation::PutMany),
            delete: op(Operation::Delete),
            delete_many: op(Operation::DeleteMany),
            ttl: op(Operation::Ttl),
            scan: op(Operation::Scan),
            collections: op(Operation::Collections),
            clear: op(Operation::Clear),
            destroy: op(Operation::Destroy),
            cull: op(Operation::Cull),
            close: op(Operation::Close),
        }
    }
}

impl<S: KvStore> Layer<S> for MetricsLayer {
    type Store = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        let keys = Arc::new(Keys::new(&self.names, inner.info().kind));
        Metrics { inner, keys }
    }
}

/// A store recording metrics of its operations; see [`MetricsLayer`].
#[derive(Clone, Debug)]
pub struct Metrics<S> {
    inner: S,
    keys: Arc<Keys>,
}

impl<S> Metrics<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::metrics::MetricsLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(MetricsLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Records a finished operation: its duration, outcome and, for reads, hits and misses
    /// (`found` gives them from the result).
    fn record<T>(
        &self,
        op: &OpKeys,
        start: Instant,
        result: &Result<T>,
        found: impl FnOnce(&T) -> (u64, u64),
    ) {
        let seconds = start.elapsed().as_secs_f64();
        ::metrics::with_recorder(|r: &dyn Recorder| {
            r.register_histogram(&op.duration, &METADATA)
                .record(seconds);
            match result {
                Ok(value) => {
                    r.register_counter(&op.ok, &METADATA).increment(1);
                    let (hits, misses) = found(value);
                    if hits > 0 {
                        r.register_counter(&op.hits, &METADATA).increment(hits);
                    }
                    if misses > 0 {
                        r.register_counter(&op.misses, &METADATA).increment(misses);
                    }
                }
                Err(e) => {
                    r.register_counter(&op.error, &METADATA).increment(1);
                    let labels = vec![
                        Label::from_static_parts("store", self.keys.store),
                        Label::from_static_parts("operation", op.operation.as_str()),
                        Label::from_static_parts("kind", e.kind().as_str()),
                    ];
                    let key = Key::from_parts(self.keys.errors.clone(), labels);
                    r.register_counter(&key, &METADATA).increment(1);
                }
            }
        });
    }
}

/// Neither hits nor misses: the operation is not a read.
fn not_a_read<T>(_: &T) -> (u64, u64) {
    (0, 0)
}

/// One hit or one miss.
fn found_one<T>(value: &Option<T>) -> (u64, u64) {
    if value.is_some() { (1, 0) } else { (0, 1) }
}

impl<S: KvStore> KvStore for Metrics<S> {
    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let start = Instant::now();
        let r = self.inner.get_opts(collection, key, opts).await;
        self.record(&self.keys.get, start, &r, found_one);
        r
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let start = Instant::now();
        let r = self.inner.get_many_opts(collection, keys, opts).await;
        self.record(&self.keys.get_many, start, &r, |slots| {
            let hits = slots.iter().flatten().count() as u64;
            (hits, slots.len() as u64 - hits)
        });
        r
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.put_opts(collection, key, value, opts).await;
        self.record(&self.keys.put, start, &r, not_a_read);
        r
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.put_many_opts(collection, entries, opts).await;
        self.record(&self.keys.put_many, start, &r, not_a_read);
        r
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let start = Instant::now();
        let r = self.inner.delete_opts(collection, key, opts).await;
        self.record(&self.keys.delete, start, &r, not_a_read);
        r
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.delete_many_opts(collection, keys, opts).await;
        self.record(&self.keys.delete_many, start, &r, not_a_read);
        r
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let start = Instant::now();
        let r = self.inner.ttl_opts(collection, key, opts).await;
        self.record(&self.keys.ttl, start, &r, found_one);
        r
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let start = Instant::now();
        let r = self.inner.scan_opts(collection, opts).await;
        self.record(&self.keys.scan, start, &r, not_a_read);
        r
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let start = Instant::now();
        let r = self.inner.collections_opts(opts).await;
        self.record(&self.keys.collections, start, &r, not_a_read);
        r
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.clear_opts(collection, opts).await;
        self.record(&self.keys.clear, start, &r, not_a_read);
        r
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.destroy_opts(opts).await;
        self.record(&self.keys.destroy, start, &r, not_a_read);
        r
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.cull_opts(opts).await;
        self.record(&self.keys.cull, start, &r, not_a_read);
        r
    }

    async fn close(&self) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.close().await;
        self.record(&self.keys.close, start, &r, not_a_read);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::Flaky;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshot};
    use std::future::Future;
    use std::time::Duration;

    /// One metric of a snapshot, its labels sorted.
    struct Metric {
        name: String,
        labels: Vec<(String, String)>,
        unit: Option<Unit>,
        value: DebugValue,
    }

    /// What a local recorder saw.
    struct Seen(Vec<Metric>);

    /// What a local recorder saw while `f` ran on a current-thread runtime.
    fn recorded<F: Future<Output = ()>>(setup: impl FnOnce() -> F) -> Seen {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(setup())
        });
        Seen::from(snapshotter.snapshot())
    }

    impl From<Snapshot> for Seen {
        fn from(s: Snapshot) -> Self {
            Seen(
                s.into_vec()
                    .into_iter()
                    .map(|(ck, unit, _, value)| {
                        let key = ck.key();
                        let mut labels: Vec<(String, String)> = key
                            .labels()
                            .map(|l| (l.key().to_owned(), l.value().to_owned()))
                            .collect();
                        labels.sort();
                        Metric {
                            name: key.name().to_owned(),
                            labels,
                            unit,
                            value,
                        }
                    })
                    .collect(),
            )
        }
    }

    impl Seen {
        /// The value of the metric `name` whose labels are exactly `labels`.
        fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
            let mut want: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            want.sort();
            self.0
                .iter()
                .find(|m| m.name == name && m.labels == want)
                .map(|m| &m.value)
        }

        fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
            match self.value(name, labels) {
                Some(DebugValue::Counter(n)) => *n,
                None => 0,
                other => panic!("{name} is not a counter: {other:?}"),
            }
        }

        fn durations(&self, name: &str, op: &str) -> Vec<f64> {
            match self.value(name, &[("store", "memory"), ("operation", op)]) {
                Some(DebugValue::Histogram(v)) => v.iter().map(|f| f.0).collect(),
                None => Vec::new(),
                other => panic!("{name} is not a histogram: {other:?}"),
            }
        }

        fn names(&self) -> Vec<&str> {
            self.0.iter().map(|m| m.name.as_str()).collect()
        }
    }

    fn op(operation: &'static str, outcome: &'static str) -> [(&'static str, &'static str); 3] {
        [
            ("store", "memory"),
            ("operation", operation),
            ("outcome", outcome),
        ]
    }

    fn read(operation: &'static str) -> [(&'static str, &'static str); 2] {
        [("store", "memory"), ("operation", operation)]
    }

    #[test]
    fn operations_are_counted_and_timed() {
        let seen = recorded(|| async {
            let s = MemoryStore::new().with(MetricsLayer::new());
            s.put("c", "a", &1).await.unwrap();
            s.put("c", "b", &1).await.unwrap();
            s.put_many("c", &[("x", 1), ("y", 2)]).await.unwrap();
            s.delete("c", "a").await.unwrap();
            s.delete_many("c", &["x"]).await.unwrap();
            s.collections().await.unwrap();
            crate::testutil::keys(&s, "c").await;
            s.clear("c").await.unwrap();
            s.cull().await.unwrap();
            s.destroy().await.unwrap();
            s.close().await.unwrap();
        });
        let total = "kv_operations_total";
        assert_eq!(seen.counter(total, &op("put", "ok")), 2);
        for name in [
            "put_many",
            "delete",
            "delete_many",
            "collections",
            "scan",
            "clear",
            "cull",
            "destroy",
            "close",
        ] {
            assert_eq!(seen.counter(total, &op(name, "ok")), 1, "{name}");
            assert_eq!(
                seen.durations("kv_operation_duration_seconds", name).len(),
                1
            );
        }
        let puts = seen.durations("kv_operation_duration_seconds", "put");
        assert_eq!(puts.len(), 2);
        assert!(puts.iter().all(|d| *d >= 0.0));
        assert_eq!(seen.counter(total, &op("put", "error")), 0);
        assert_eq!(seen.counter("kv_hits_total", &read("put")), 0);
    }

    #[test]
    fn reads_count_hits_and_misses_per_key() {
        let seen = recorded(|| async {
            let s = MemoryStore::new().with(MetricsLayer::new());
            s.put("c", "a", &1).await.unwrap();
            s.get::<i32>("c", "a").await.unwrap();
            s.get::<i32>("c", "nope").await.unwrap();
            s.get::<i32>("c", "nope").await.unwrap();
            s.get_many::<i32>("c", &["a", "a", "b"]).await.unwrap();
            s.ttl("c", "a").await.unwrap();
        });
        let (hits, misses) = ("kv_hits_total", "kv_misses_total");
        assert_eq!(seen.counter(hits, &read("get")), 1);
        assert_eq!(seen.counter(misses, &read("get")), 2);
        assert_eq!(seen.counter(hits, &read("get_many")), 2);
        assert_eq!(seen.counter(misses, &read("get_many")), 1);
        assert_eq!(seen.counter(hits, &read("ttl")), 1);
        assert_eq!(seen.counter(misses, &read("ttl")), 0);
        assert_eq!(seen.counter("kv_operations_total", &op("get", "ok")), 3);
    }

    #[test]
    fn failures_are_counted_by_kind() {
        let seen = recorded(|| async {
            let flaky = Flaky::new();
            let s = flaky.clone().with(MetricsLayer::new());
            flaky.fail_next(1);
            assert!(s.get::<i32>("c", "a").await.is_err());
            let zero = s.put_with_ttl("c", "a", &1, Duration::ZERO).await;
            assert!(zero.is_err());
        });
        let total = "kv_operations_total";
        assert_eq!(seen.counter(total, &op("get", "error")), 1);
        assert_eq!(seen.counter(total, &op("get", "ok")), 0);
        assert_eq!(seen.counter("kv_misses_total", &read("get")), 0);
        assert_eq!(seen.counter(total, &op("put", "error")), 1);
        let errors = "kv_errors_total";
        let labels = |op, kind| [("store", "memory"), ("operation", op), ("kind", kind)];
        assert_eq!(seen.counter(errors, &labels("get", "unavailable")), 1);
        assert_eq!(seen.counter(errors, &labels("put", "invalid ttl")), 1);
        assert_eq!(
            seen.durations("kv_operation_duration_seconds", "get").len(),
            1
        );
    }

    #[test]
    fn the_prefix_names_every_metric() {
        let seen = recorded(|| async {
            let s = MemoryStore::new().with(MetricsLayer::new().prefix("app"));
            s.get::<i32>("c", "a").await.unwrap();
            let bare = MemoryStore::new().with(MetricsLayer::new().prefix(""));
            bare.get::<i32>("c", "a").await.unwrap();
        });
        let mut names = seen.names();
        names.sort();
        assert_eq!(
            names,
            [
                "app_misses_total",
                "app_operation_duration_seconds",
                "app_operations_total",
                "misses_total",
                "operation_duration_seconds",
                "operations_total",
            ]
        );
    }

    #[test]
    fn describe_sets_units() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            MetricsLayer::new().describe();
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(async {
                    let s = MemoryStore::new().with(MetricsLayer::new());
                    s.get::<i32>("c", "a").await.unwrap();
                });
        });
        let seen = Seen::from(snapshotter.snapshot());
        let unit = |name: &str| seen.0.iter().find(|m| m.name == name).and_then(|m| m.unit);
        assert_eq!(unit("kv_operations_total"), Some(Unit::Count));
        assert_eq!(unit("kv_operation_duration_seconds"), Some(Unit::Seconds));
    }

    #[tokio::test]
    async fn without_a_recorder_nothing_breaks() {
        let s = MemoryStore::new().with(MetricsLayer::new());
        s.put("c", "a", &1).await.unwrap();
        assert_eq!(s.get::<i32>("c", "a").await.unwrap(), Some(1));
    }
}
