//! Runs every operation inside a [`tracing`] span, and reports its outcome.
//!
//! Each operation gets a span named `kv.<operation>` (`kv.get`, `kv.put_many`, `kv.scan`, ...)
//! at [`Level::INFO`] by default ([`TracingLayer::level`] changes it), with the fields
//!
//! | field | value |
//! |---|---|
//! | `store` | the inner store's kind (`"memory"`, `"redis"`, ...) |
//! | `collection` | the collection addressed (the default one for an empty name) |
//! | `key` | the key, for single-key operations |
//! | `keys` | the number of keys (or entries), for batches |
//! | `outcome` | `"ok"`, `"miss"` (a read or delete that found nothing) or `"error"` |
//! | `error_kind` | the [`ErrorKind`](kv_core::ErrorKind) of a failure |
//! | `count` | entries found, written or removed (batches, `clear`, `cull`), items or names listed |
//! | `value_size` | value sizes in bytes, only with [`TracingLayer::record_value_sizes`] |
//!
//! A failed operation also emits a [`Level::WARN`] event inside its span, with the error's
//! `Display` (which never contains values). Values themselves are never recorded; their sizes
//! only on request. The inner futures are [instrumented](tracing::Instrument): the span is
//! entered on every poll and nothing blocks.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::tracing_layer::TracingLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new().with(
//!     TracingLayer::new()
//!         .level(tracing::Level::DEBUG)
//!         .record_value_sizes(true),
//! );
//! store.put("users", "alice", &1).await?; // a `kv.put` span
//! assert_eq!(store.get::<i32>("users", "alice").await?, Some(1)); // a `kv.get` span
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry,
    GetOptions, KvStore, Layer, PutManyOptions, PutOptions, Result, ScanOptions, ScanPage, Ttl,
};
use tracing::field::Empty;
use tracing::{Instrument, Level, Span};

/// The configuration of a [`Traced`] store.
#[derive(Clone, Copy, Debug)]
pub struct TracingLayer {
    level: Level,
    record_value_sizes: bool,
}

impl Default for TracingLayer {
    fn default() -> Self {
        TracingLayer {
            level: Level::INFO,
            record_value_sizes: false,
        }
    }
}

impl TracingLayer {
    /// Spans at [`Level::INFO`], without value sizes.
    ///
    /// ```
    /// let layer = kv_layers::tracing_layer::TracingLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The level of the operation spans (failure events are always at [`Level::WARN`]).
    ///
    /// ```
    /// use kv_layers::tracing_layer::TracingLayer;
    /// let layer = TracingLayer::new().level(tracing::Level::DEBUG);
    /// # let _ = layer;
    /// ```
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Whether to record the sizes of values read and written (`value_size`, in bytes; the
    /// total for batches). Contents are never recorded. Off by default.
    ///
    /// ```
    /// use kv_layers::tracing_layer::TracingLayer;
    /// let layer = TracingLayer::new().record_value_sizes(true);
    /// # let _ = layer;
    /// ```
    pub fn record_value_sizes(mut self, record: bool) -> Self {
        self.record_value_sizes = record;
        self
    }
}

impl<S: KvStore> Layer<S> for TracingLayer {
    type Store = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            config: *self,
        }
    }
}

/// A store tracing its operations; see [`TracingLayer`].
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
    config: TracingLayer,
}

/// A span with the level chosen at run time (the `span!` macros take a constant level).
macro_rules! op_span {
    ($level:expr, $name:literal, $($fields:tt)*) => {{
        let level: Level = $level;
        if level == Level::ERROR {
            tracing::error_span!($name, $($fields)*)
        } else if level == Level::WARN {
            tracing::warn_span!($name, $($fields)*)
        } else if level == Level::INFO {
            tracing::info_span!($name, $($fields)*)
        } else if level == Level::DEBUG {
            tracing::debug_span!($name, $($fields)*)
        } else {
            tracing::trace_span!($name, $($fields)*)
        }
    }};
}

/// A span for an operation on one key.
macro_rules! key_span {
    ($self:ident, $name:literal, $collection:expr, $key:expr) => {
        op_span!(
            $self.config.level,
            $name,
            store = $self.inner.info().kind,
            collection = $self.inner.info().resolve($collection),
            key = $key,
            outcome = Empty,
            error_kind = Empty,
            value_size = Empty,
        )
    };
}

/// A span for a batch (or a whole-collection operation) of `keys` keys.
macro_rules! batch_span {
    ($self:ident, $name:literal, $collection:expr, $keys:expr) => {
        op_span!(
            $self.config.level,
            $name,
            store = $self.inner.info().kind,
            collection = $self.inner.info().resolve($collection),
            keys = $keys,
            outcome = Empty,
            error_kind = Empty,
            count = Empty,
            value_size = Empty,
        )
    };
}

/// A span for an operation on no collection.
macro_rules! store_span {
    ($self:ident, $name:literal) => {
        op_span!(
            $self.config.level,
            $name,
            store = $self.inner.info().kind,
            outcome = Empty,
            error_kind = Empty,
            count = Empty,
        )
    };
}

impl<S: KvStore> Traced<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::tracing_layer::TracingLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(TracingLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Records a value size on `span`, if configured.
    fn size(&self, span: &Span, size: impl FnOnce() -> usize) {
        if self.config.record_value_sizes && !span.is_disabled() {
            span.record("value_size", size() as u64);
        }
    }
}

/// Records an operation's outcome on its span (`ok` says `"ok"` or `"miss"` for a success) and,
/// for a failure, emits a warning inside it.
fn finish<T>(span: &Span, name: &'static str, result: &Result<T>, ok: impl FnOnce(&T) -> bool) {
    match result {
        Ok(v) => {
            span.record("outcome", if ok(v) { "ok" } else { "miss" });
        }
        Err(e) => {
            span.record("outcome", "error");
            span.record("error_kind", e.kind().as_str());
            tracing::warn!(parent: span, error = %e, "{name} failed");
        }
    }
}

fn entries_size<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> usize {
    entries.into_iter().map(|e| e.value.len()).sum()
}

impl<S: KvStore> KvStore for Traced<S> {
    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let span = key_span!(self, "kv.get", collection, key);
        let r = self
            .inner
            .get_opts(collection, key, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.get", &r, Option::is_some);
        if let Ok(Some(e)) = &r {
            self.size(&span, || e.value.len());
        }
        r
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let span = batch_span!(self, "kv.get_many", collection, keys.len());
        let r = self
            .inner
            .get_many_opts(collection, keys, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.get_many", &r, |_| true);
        if let Ok(v) = &r {
            span.record("count", v.iter().flatten().count() as u64);
            self.size(&span, || entries_size(v.iter().flatten()));
        }
        r
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let span = key_span!(self, "kv.put", collection, key);
        let size = value.len();
        let r = self
            .inner
            .put_opts(collection, key, value, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.put", &r, |_| true);
        self.size(&span, || size);
        r
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let span = batch_span!(self, "kv.put_many", collection, entries.len());
        let r = self
            .inner
            .put_many_opts(collection, entries, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.put_many", &r, |_| true);
        if r.is_ok() {
            span.record("count", entries.len() as u64);
        }
        self.size(&span, || entries.iter().map(|(_, v)| v.len()).sum());
        r
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let span = key_span!(self, "kv.delete", collection, key);
        let r = self
            .inner
            .delete_opts(collection, key, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.delete", &r, |&d| d);
        r
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let span = batch_span!(self, "kv.delete_many", collection, keys.len());
        let r = self
            .inner
            .delete_many_opts(collection, keys, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.delete_many", &r, |_| true);
        if let Ok(n) = &r {
            span.record("count", *n);
        }
        r
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let span = key_span!(self, "kv.ttl", collection, key);
        let r = self
            .inner
            .ttl_opts(collection, key, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.ttl", &r, Option::is_some);
        r
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let span = batch_span!(self, "kv.scan", collection, Empty);
        let r = self
            .inner
            .scan_opts(collection, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.scan", &r, |_| true);
        if let Ok(page) = &r {
            span.record("count", page.items.len() as u64);
            self.size(&span, || {
                entries_size(page.items.iter().filter_map(|i| i.entry.as_ref()))
            });
        }
        r
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let span = store_span!(self, "kv.collections");
        let r = self
            .inner
            .collections_opts(opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.collections", &r, |_| true);
        if let Ok(v) = &r {
            span.record("count", v.len() as u64);
        }
        r
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let span = batch_span!(self, "kv.clear", collection, Empty);
        let r = self
            .inner
            .clear_opts(collection, opts)
            .instrument(span.clone())
            .await;
        finish(&span, "kv.clear", &r, |_| true);
        if let Ok(n) = &r {
            span.record("count", *n);
        }
        r
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let span = store_span!(self, "kv.destroy");
        let r = self.inner.destroy_opts(opts).instrument(span.clone()).await;
        finish(&span, "kv.destroy", &r, |_| true);
        r
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let span = store_span!(self, "kv.cull");
        let r = self.inner.cull_opts(opts).instrument(span.clone()).await;
        finish(&span, "kv.cull", &r, |_| true);
        if let Ok(n) = &r {
            span.record("count", *n);
        }
        r
    }

    forward!(inner; info, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::test_tracing::{assert_absent, recorded};
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    const SECRET: &str = "s3cr3t-value-bytes";

    #[test]
    fn get_runs_in_a_kv_get_span() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(TracingLayer::new());
            s.put("users", "alice", &SECRET).await.unwrap();
            assert_eq!(
                s.get::<String>("users", "alice").await.unwrap().as_deref(),
                Some(SECRET)
            );
            assert_eq!(s.get::<String>("", "bob").await.unwrap(), None);
        });
        let gets: Vec<_> = log.iter().filter(|r| r.name == "kv.get").collect();
        assert_eq!(gets.len(), 2, "{log:?}");
        let hit = gets[0];
        assert!(!hit.event);
        assert_eq!(hit.level, Level::INFO);
        assert_eq!(hit.field("store"), Some("memory"));
        assert_eq!(hit.field("collection"), Some("users"));
        assert_eq!(hit.field("key"), Some("alice"));
        assert_eq!(hit.field("outcome"), Some("ok"));
        assert_eq!(hit.field("value_size"), None);
        let miss = gets[1];
        assert_eq!(miss.field("collection"), Some("default_collection"));
        assert_eq!(miss.field("outcome"), Some("miss"));
        assert!(log.iter().any(|r| r.name == "kv.put"));
        assert!(
            !log.iter().any(|r| r.event),
            "no failure, no event: {log:?}"
        );
    }

    #[test]
    fn a_failure_records_its_kind_and_warns() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(TracingLayer::new().level(Level::DEBUG));
            let bad = s
                .put_with_ttl("a", "k", &SECRET, std::time::Duration::ZERO)
                .await;
            assert!(bad.is_err());
        });
        let put = log.iter().find(|r| r.name == "kv.put").unwrap();
        assert_eq!(put.level, Level::DEBUG);
        assert_eq!(put.field("outcome"), Some("error"));
        assert!(put.field("error_kind").is_some_and(|k| !k.is_empty()));
        let warn = log.iter().find(|r| r.event).expect("a warn event");
        assert_eq!(warn.level, Level::WARN);
        assert_eq!(warn.name, "kv.put failed");
        assert!(warn.field("error").is_some_and(|e| !e.is_empty()));
        assert_absent(&log, SECRET);
    }

    #[test]
    fn batches_record_counts_and_sizes_only_on_request() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(TracingLayer::new().record_value_sizes(true));
            s.put_many("b", &[("x", SECRET), ("y", SECRET)])
                .await
                .unwrap();
            let got = s.get_many::<String>("b", &["x", "y", "z"]).await.unwrap();
            assert_eq!(got.iter().flatten().count(), 2);
            s.get::<String>("b", "x").await.unwrap();
            assert_eq!(s.delete_many("b", &["x", "z"]).await.unwrap(), 1);
            assert_eq!(s.clear("b").await.unwrap(), 1);
        });
        let span = |name: &str| log.iter().find(|r| r.name == name).unwrap();
        let put_many = span("kv.put_many");
        assert_eq!(put_many.field("keys"), Some("2"));
        assert_eq!(put_many.field("count"), Some("2"));
        let get_many = span("kv.get_many");
        assert_eq!(get_many.field("keys"), Some("3"));
        assert_eq!(get_many.field("count"), Some("2"));
        assert_eq!(get_many.field("key"), None);
        let size: u64 = span("kv.get").field("value_size").unwrap().parse().unwrap();
        assert!(size > 0);
        assert_eq!(
            get_many.field("value_size"),
            Some((2 * size).to_string().as_str())
        );
        assert_eq!(span("kv.delete_many").field("count"), Some("1"));
        assert_eq!(span("kv.clear").field("count"), Some("1"));
        assert_absent(&log, SECRET);
    }
}
