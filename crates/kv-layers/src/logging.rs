//! Logs one [`tracing`] event per operation: what was asked, how it went, how long it took.
//!
//! Where [`tracing_layer`](crate::tracing_layer) opens a span around each operation (for
//! distributed traces and timing trees), this layer writes one flat log line after it, the way
//! py-key-value's `LoggingWrapper` does — but with structured fields, and without its bug of
//! logging values although told not to.
//!
//! Every event has the target `"kv"` (filter it with `RUST_LOG=kv=debug`), the message
//! `kv.<operation>` and the fields
//!
//! | field | value |
//! |---|---|
//! | `store` | the inner store's kind (`"memory"`, `"redis"`, ...) |
//! | `operation` | `get`, `get_many`, `put`, `put_many`, `delete`, `delete_many`, `ttl`, `scan`, `collections`, `clear`, `destroy`, `cull` or `close` |
//! | `collection` | the collection addressed (the default one for an empty name) |
//! | `key` | the key, for single-key operations |
//! | `keys` | the number of keys (or entries), for batches |
//! | `outcome` | `"hit"` or `"miss"` for `get` and `ttl`; `"ok"` or `"miss"` (nothing to remove) for `delete`; `"ok"` for the others; `"error"` for every failure |
//! | `count` | entries found (`get_many`), written, removed (`delete_many`, `clear`, `cull`), items or names listed |
//! | `error_kind` | the [`ErrorKind`](kv_core::ErrorKind) of a failure (`"timeout"`, `"condition failed"`, ...) |
//! | `error` | the failure's `Display`, which never holds values |
//! | `elapsed_us` | the operation's duration in microseconds |
//! | `value` | only with [`LoggingLayer::log_values`]: the value(s) read or written, cut short |
//!
//! Successes are logged at [`Level::DEBUG`], failures at [`Level::WARN`]; both are
//! configurable. A `ConditionFailed` (an if-absent or if-version put that lost) is a failure
//! like any other: raise [`LoggingLayer::failure_level`]'s threshold in your subscriber, or
//! lower the level, if your program expects many.
//!
//! **Values are never logged** unless [`LoggingLayer::log_values`] is on. Then the values of
//! `get` (a hit), `get_many` (each slot), `put` and `put_many` are shown, each cut after
//! [`LoggingLayer::max_value_bytes`] bytes (64 by default, on a character boundary), as
//! escaped text (invalid UTF-8 shown as `�`) or as hex ([`ValueFormat`]), with the full
//! length when cut. Scans only log their item count. Keys and collection names are always
//! logged: do not put secrets in them.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::logging::{LoggingLayer, ValueFormat};
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new().with(
//!     LoggingLayer::new()
//!         .level(tracing::Level::INFO)
//!         .log_values(true)
//!         .max_value_bytes(32)
//!         .value_format(ValueFormat::Text),
//! );
//! // INFO kv: kv.put store="memory" operation="put" collection="users" key="alice" outcome="ok" ...
//! store.put("users", "alice", &30).await?;
//! // INFO kv: kv.get ... outcome="hit" elapsed_us=2 value="30"
//! assert_eq!(store.get::<u32>("users", "alice").await?, Some(30));
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions, Entry, Error,
    GetOptions, KvStore, Layer, Operation, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};
use tracing::Level;
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};

/// The target of every event the layer emits.
pub const TARGET: &str = "kv";

/// The default number of bytes of a value shown when values are logged.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64;

/// How logged values are shown (only with [`LoggingLayer::log_values`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueFormat {
    /// As text in quotes, escaped like a Rust string literal (so a value cannot forge log
    /// lines); invalid UTF-8 is shown as `�`.
    #[default]
    Text,
    /// As lowercase hexadecimal, two digits per byte.
    Hex,
}

/// The configuration of a [`Logging`] store.
#[derive(Clone, Copy, Debug)]
pub struct LoggingLayer {
    level: Level,
    failure_level: Level,
    log_values: bool,
    max_value_bytes: usize,
    value_format: ValueFormat,
}

impl Default for LoggingLayer {
    fn default() -> Self {
        LoggingLayer {
            level: Level::DEBUG,
            failure_level: Level::WARN,
            log_values: false,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            value_format: ValueFormat::Text,
        }
    }
}

impl LoggingLayer {
    /// Successes at [`Level::DEBUG`], failures at [`Level::WARN`], no values.
    ///
    /// ```
    /// let layer = kv_layers::logging::LoggingLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The level of the events of operations that succeed (misses included).
    ///
    /// ```
    /// let layer = kv_layers::logging::LoggingLayer::new().level(tracing::Level::INFO);
    /// # let _ = layer;
    /// ```
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The level of the events of operations that fail.
    ///
    /// ```
    /// let layer = kv_layers::logging::LoggingLayer::new().failure_level(tracing::Level::ERROR);
    /// # let _ = layer;
    /// ```
    pub fn failure_level(mut self, level: Level) -> Self {
        self.failure_level = level;
        self
    }

    /// Whether to log the values read and written (field `value`). Off by default: values
    /// may be secrets or personal data.
    ///
    /// ```
    /// let layer = kv_layers::logging::LoggingLayer::new().log_values(true);
    /// # let _ = layer;
    /// ```
    pub fn log_values(mut self, log: bool) -> Self {
        self.log_values = log;
        self
    }

    /// How many bytes of each value to show when values are logged (default
    /// [`DEFAULT_MAX_VALUE_BYTES`]); longer values are cut and their length added. `0` shows
    /// only the length.
    ///
    /// ```
    /// let layer = kv_layers::logging::LoggingLayer::new().log_values(true).max_value_bytes(16);
    /// # let _ = layer;
    /// ```
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// How logged values are shown: [`ValueFormat::Text`] (default) or [`ValueFormat::Hex`].
    ///
    /// ```
    /// use kv_layers::logging::{LoggingLayer, ValueFormat};
    /// let layer = LoggingLayer::new().log_values(true).value_format(ValueFormat::Hex);
    /// # let _ = layer;
    /// ```
    pub fn value_format(mut self, format: ValueFormat) -> Self {
        self.value_format = format;
        self
    }
}

impl<S: KvStore> Layer<S> for LoggingLayer {
    type Store = Logging<S>;

    fn layer(&self, inner: S) -> Logging<S> {
        Logging {
            inner,
            config: *self,
        }
    }
}

/// A store logging each of its operations; see [`LoggingLayer`].
#[derive(Clone, Debug)]
pub struct Logging<S> {
    inner: S,
    config: LoggingLayer,
}

impl<S> Logging<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::logging::LoggingLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(LoggingLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// What one event says about one operation.
struct Record<'a> {
    operation: Operation,
    start: Instant,
    collection: Option<&'a str>,
    key: Option<&'a str>,
    keys: Option<u64>,
    outcome: &'static str,
    count: Option<u64>,
    error: Option<&'a Error>,
    values: Option<Values<'a>>,
}

/// The values an event shows, formatted only if the event is written.
enum Values<'a> {
    One(&'a [u8]),
    /// `(key, value)` per slot of a batch; `None` for a miss.
    Many(Vec<(&'a str, Option<&'a [u8]>)>),
}

/// [`Values`] with the layer's display settings.
struct Shown<'a> {
    values: &'a Values<'a>,
    max: usize,
    format: ValueFormat,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.values {
            Values::One(v) => self.one(f, v),
            Values::Many(slots) => {
                f.write_str("{")?;
                for (i, (key, value)) in slots.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key:?}: ")?;
                    match value {
                        Some(v) => self.one(f, v)?,
                        None => f.write_str("<miss>")?,
                    }
                }
                f.write_str("}")
            }
        }
    }
}

impl Shown<'_> {
    fn one(&self, f: &mut fmt::Formatter<'_>, value: &[u8]) -> fmt::Result {
        let shown = &value[..value.len().min(self.max)];
        match self.format {
            ValueFormat::Text => {
                let shown = if shown.len() < value.len() {
                    without_cut_char(shown)
                } else {
                    shown
                };
                write!(f, "{:?}", String::from_utf8_lossy(shown))?;
            }
            ValueFormat::Hex => {
                for b in shown {
                    write!(f, "{b:02x}")?;
                }
            }
        }
        if shown.len() < value.len() {
            write!(f, "… ({} bytes)", value.len())?;
        }
        Ok(())
    }
}

/// `bytes` without a UTF-8 sequence cut short at its end (so a cut value does not end in `�`
/// when only the cut broke the character).
fn without_cut_char(bytes: &[u8]) -> &[u8] {
    // A UTF-8 character is at most 4 bytes: its first byte is among the last 4.
    let tail = bytes.len().saturating_sub(4);
    let Some(lead) = (tail..bytes.len()).rev().find(|&i| bytes[i] & 0xC0 != 0x80) else {
        return bytes;
    };
    match std::str::from_utf8(&bytes[lead..]) {
        Err(e) if e.error_len().is_none() => &bytes[..lead + e.valid_up_to()],
        _ => bytes,
    }
}

/// Emits an event at a level chosen at run time (the `event!` macro takes a constant one).
macro_rules! event_at {
    ($level:expr, $($fields:tt)*) => {{
        let level: Level = $level;
        if level == Level::ERROR {
            tracing::event!(target: TARGET, Level::ERROR, $($fields)*)
        } else if level == Level::WARN {
            tracing::event!(target: TARGET, Level::WARN, $($fields)*)
        } else if level == Level::INFO {
            tracing::event!(target: TARGET, Level::INFO, $($fields)*)
        } else if level == Level::DEBUG {
            tracing::event!(target: TARGET, Level::DEBUG, $($fields)*)
        } else {
            tracing::event!(target: TARGET, Level::TRACE, $($fields)*)
        }
    }};
}

impl<S: KvStore> Logging<S> {
    /// A record of `operation` on `collection` (resolved to the default one if empty).
    fn record<'a>(
        &'a self,
        operation: Operation,
        collection: Option<&'a str>,
        start: Instant,
    ) -> Record<'a> {
        Record {
            operation,
            start,
            collection: collection.map(|c| self.inner.info().resolve(c)),
            key: None,
            keys: None,
            outcome: "ok",
            count: None,
            error: None,
            values: None,
        }
    }

    /// `values()` if values are logged.
    fn values<'a>(&self, values: impl FnOnce() -> Values<'a>) -> Option<Values<'a>> {
        self.config.log_values.then(values)
    }

    fn emit(&self, r: Record<'_>) {
        let elapsed_us = u64::try_from(r.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let level = if r.error.is_some() {
            self.config.failure_level
        } else {
            self.config.level
        };
        if level > STATIC_MAX_LEVEL || level > LevelFilter::current() {
            return;
        }
        let shown = r.values.as_ref().map(|values| Shown {
            values,
            max: self.config.max_value_bytes,
            format: self.config.value_format,
        });
        let outcome = if r.error.is_some() {
            "error"
        } else {
            r.outcome
        };
        event_at!(
            level,
            store = self.inner.info().kind,
            operation = r.operation.as_str(),
            collection = r.collection,
            key = r.key,
            keys = r.keys,
            outcome,
            count = r.count,
            error_kind = r.error.map(|e| e.kind().as_str()),
            error = r.error.map(tracing::field::display),
            elapsed_us,
            value = shown.map(tracing::field::display),
            "kv.{}",
            r.operation.as_str()
        );
    }
}

fn slots<'a>(keys: &[&'a str], entries: &'a [Option<Entry>]) -> Values<'a> {
    Values::Many(
        keys.iter()
            .zip(entries)
            .map(|(k, e)| (*k, e.as_ref().map(|e| &e.value[..])))
            .collect(),
    )
}

impl<S: KvStore> KvStore for Logging<S> {
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
        let result = self.inner.get_opts(collection, key, opts).await;
        let mut r = self.record(Operation::Get, Some(collection), start);
        r.key = Some(key);
        match &result {
            Ok(Some(entry)) => {
                r.outcome = "hit";
                r.values = self.values(|| Values::One(&entry.value));
            }
            Ok(None) => r.outcome = "miss",
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let start = Instant::now();
        let result = self.inner.get_many_opts(collection, keys, opts).await;
        let mut r = self.record(Operation::GetMany, Some(collection), start);
        r.keys = Some(keys.len() as u64);
        match &result {
            Ok(entries) => {
                r.count = Some(entries.iter().flatten().count() as u64);
                r.values = self.values(|| slots(keys, entries));
            }
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let start = Instant::now();
        // A clone of `Bytes` is a reference count, not a copy; only taken to log it.
        let logged = self.config.log_values.then(|| value.clone());
        let result = self.inner.put_opts(collection, key, value, opts).await;
        let mut r = self.record(Operation::Put, Some(collection), start);
        r.key = Some(key);
        r.values = logged.as_deref().map(Values::One);
        if let Err(e) = &result {
            r.error = Some(e);
        }
        self.emit(r);
        result
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let start = Instant::now();
        let result = self.inner.put_many_opts(collection, entries, opts).await;
        let mut r = self.record(Operation::PutMany, Some(collection), start);
        r.keys = Some(entries.len() as u64);
        r.values =
            self.values(|| Values::Many(entries.iter().map(|(k, v)| (*k, Some(&v[..]))).collect()));
        match &result {
            Ok(()) => r.count = Some(entries.len() as u64),
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        let start = Instant::now();
        let result = self.inner.delete_opts(collection, key, opts).await;
        let mut r = self.record(Operation::Delete, Some(collection), start);
        r.key = Some(key);
        match &result {
            Ok(true) => {}
            Ok(false) => r.outcome = "miss",
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        let start = Instant::now();
        let result = self.inner.delete_many_opts(collection, keys, opts).await;
        let mut r = self.record(Operation::DeleteMany, Some(collection), start);
        r.keys = Some(keys.len() as u64);
        match &result {
            Ok(n) => r.count = Some(*n),
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        let start = Instant::now();
        let result = self.inner.ttl_opts(collection, key, opts).await;
        let mut r = self.record(Operation::Ttl, Some(collection), start);
        r.key = Some(key);
        match &result {
            Ok(Some(_)) => r.outcome = "hit",
            Ok(None) => r.outcome = "miss",
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let start = Instant::now();
        let result = self.inner.scan_opts(collection, opts).await;
        let mut r = self.record(Operation::Scan, Some(collection), start);
        match &result {
            Ok(page) => r.count = Some(page.items.len() as u64),
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        let start = Instant::now();
        let result = self.inner.collections_opts(opts).await;
        let mut r = self.record(Operation::Collections, None, start);
        match &result {
            Ok(names) => r.count = Some(names.len() as u64),
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        let start = Instant::now();
        let result = self.inner.clear_opts(collection, opts).await;
        let mut r = self.record(Operation::Clear, Some(collection), start);
        match &result {
            Ok(n) => r.count = Some(*n),
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        let start = Instant::now();
        let result = self.inner.destroy_opts(opts).await;
        let mut r = self.record(Operation::Destroy, None, start);
        r.error = result.as_ref().err();
        self.emit(r);
        result
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let start = Instant::now();
        let result = self.inner.cull_opts(opts).await;
        let mut r = self.record(Operation::Cull, None, start);
        match &result {
            Ok(n) => r.count = Some(*n),
            Err(e) => r.error = Some(e),
        }
        self.emit(r);
        result
    }

    async fn close(&self) -> Result<()> {
        let start = Instant::now();
        let result = self.inner.close().await;
        let mut r = self.record(Operation::Close, None, start);
        r.error = result.as_ref().err();
        self.emit(r);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::test_tracing::{Recorded, assert_absent, recorded};
    use crate::testutil::Flaky;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;
    use std::time::Duration;

    const SECRET: &str = "s3cr3t-value-bytes";

    fn events(log: &[Recorded]) -> Vec<&Recorded> {
        log.iter()
            .filter(|r| r.event && r.target == TARGET)
            .collect()
    }

    fn event<'a>(log: &'a [Recorded], operation: &str) -> &'a Recorded {
        log.iter()
            .find(|r| r.event && r.field("operation") == Some(operation))
            .unwrap_or_else(|| panic!("no {operation} event in {log:?}"))
    }

    #[test]
    fn one_event_per_operation_with_its_outcome() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(LoggingLayer::new());
            s.put("users", "alice", &SECRET).await.unwrap();
            s.get::<String>("users", "alice").await.unwrap();
            s.get::<String>("", "bob").await.unwrap();
            s.ttl("users", "alice").await.unwrap();
            s.delete("users", "nobody").await.unwrap();
        });
        let events = events(&log);
        assert_eq!(events.len(), 5, "{log:?}");
        assert!(log.iter().all(|r| r.event), "events, not spans: {log:?}");
        let put = events[0];
        assert_eq!(put.name, "kv.put");
        assert_eq!(put.level, Level::DEBUG);
        assert_eq!(put.field("store"), Some("memory"));
        assert_eq!(put.field("collection"), Some("users"));
        assert_eq!(put.field("key"), Some("alice"));
        assert_eq!(put.field("outcome"), Some("ok"));
        assert!(put.field("elapsed_us").unwrap().parse::<u64>().is_ok());
        assert_eq!(events[1].field("outcome"), Some("hit"));
        let miss = events[2];
        assert_eq!(miss.field("outcome"), Some("miss"));
        assert_eq!(miss.field("collection"), Some("default_collection"));
        assert_eq!(events[3].field("operation"), Some("ttl"));
        assert_eq!(events[3].field("outcome"), Some("hit"));
        assert_eq!(events[4].field("outcome"), Some("miss"));
        for e in &events {
            assert_eq!(e.field("value"), None);
            assert_eq!(e.field("error"), None);
        }
        assert_absent(&log, SECRET);
    }

    #[test]
    fn failures_are_warnings_with_their_kind() {
        let log = recorded(|| async {
            let flaky = Flaky::new();
            flaky.permanent(true);
            flaky.fail_next(1);
            let s = flaky.with(LoggingLayer::new().log_values(false));
            assert!(s.put("c", "k", &SECRET).await.is_err());
            let bad_ttl = s.put_with_ttl("c", "k", &SECRET, Duration::ZERO).await;
            assert!(bad_ttl.is_err());
        });
        let events = events(&log);
        assert_eq!(events.len(), 2, "{log:?}");
        for e in &events {
            assert_eq!(e.level, Level::WARN);
            assert_eq!(e.field("outcome"), Some("error"));
            assert!(e.field("error").is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(events[0].field("error_kind"), Some("backend error"));
        assert_eq!(events[1].field("error_kind"), Some("invalid ttl"));
        assert_absent(&log, SECRET);
    }

    #[test]
    fn levels_are_configurable() {
        let log = recorded(|| async {
            let layer = LoggingLayer::new()
                .level(Level::INFO)
                .failure_level(Level::ERROR);
            let s = MemoryStore::new().with(layer);
            s.put("c", "k", &1).await.unwrap();
            assert!(s.put_with_ttl("c", "k", &1, Duration::ZERO).await.is_err());
        });
        let events = events(&log);
        assert_eq!(events[0].level, Level::INFO);
        assert_eq!(events[1].level, Level::ERROR);
    }

    #[test]
    fn batches_and_listings_log_counts() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(LoggingLayer::new());
            s.put_many("b", &[("x", SECRET), ("y", SECRET)])
                .await
                .unwrap();
            s.get_many::<String>("b", &["x", "y", "z"]).await.unwrap();
            assert_eq!(s.delete_many("b", &["x", "z"]).await.unwrap(), 1);
            s.collections().await.unwrap();
            assert_eq!(s.clear("b").await.unwrap(), 1);
            s.cull().await.unwrap();
            s.destroy().await.unwrap();
            s.close().await.unwrap();
        });
        let put_many = event(&log, "put_many");
        assert_eq!(
            (put_many.field("keys"), put_many.field("count")),
            (Some("2"), Some("2"))
        );
        assert_eq!(put_many.field("key"), None);
        let get_many = event(&log, "get_many");
        assert_eq!(
            (get_many.field("keys"), get_many.field("count")),
            (Some("3"), Some("2"))
        );
        assert_eq!(event(&log, "delete_many").field("count"), Some("1"));
        assert_eq!(event(&log, "collections").field("collection"), None);
        assert_eq!(event(&log, "clear").field("count"), Some("1"));
        for op in ["cull", "destroy", "close"] {
            assert_eq!(event(&log, op).field("outcome"), Some("ok"));
        }
        assert_absent(&log, SECRET);
    }

    #[test]
    fn scans_log_their_item_count_never_values() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(LoggingLayer::new().log_values(true));
            s.put_bytes("s", "a", SECRET).await.unwrap();
            let page = s.scan_opts("s", ScanOptions::default()).await.unwrap();
            assert_eq!(page.items.len(), 1);
        });
        let scan = event(&log, "scan");
        assert_eq!(scan.field("count"), Some("1"));
        assert_eq!(scan.field("value"), None);
    }

    #[test]
    fn values_appear_only_when_asked_cut_to_the_limit() {
        let log = recorded(|| async {
            let s =
                MemoryStore::new().with(LoggingLayer::new().log_values(true).max_value_bytes(6));
            s.put_bytes("c", "k", SECRET).await.unwrap();
            s.get_bytes("c", "k").await.unwrap();
            s.put_bytes("c", "short", "hey").await.unwrap();
        });
        let cut = format!("\"s3cr3t\"… ({} bytes)", SECRET.len());
        let put = event(&log, "put");
        assert_eq!(put.field("value"), Some(cut.as_str()));
        assert_eq!(event(&log, "get").field("value"), Some(cut.as_str()));
        assert_absent(&log, SECRET);
        let short = log
            .iter()
            .rfind(|r| r.field("key") == Some("short"))
            .unwrap();
        assert_eq!(short.field("value"), Some("\"hey\""));
    }

    #[test]
    fn whole_values_when_the_limit_allows() {
        let log = recorded(|| async {
            let s = MemoryStore::new().with(LoggingLayer::new().log_values(true));
            s.put_bytes("c", "k", SECRET).await.unwrap();
        });
        let expected = format!("{SECRET:?}");
        assert_eq!(event(&log, "put").field("value"), Some(expected.as_str()));
    }

    #[test]
    fn hex_format_and_batches() {
        let log = recorded(|| async {
            let layer = LoggingLayer::new()
                .log_values(true)
                .max_value_bytes(2)
                .value_format(ValueFormat::Hex);
            let s = MemoryStore::new().with(layer);
            let entries = [
                ("a", Bytes::from_static(&[0xff, 0x00, 0x01])),
                ("b", Bytes::from_static(&[0x7f])),
            ];
            s.put_many_opts("c", &entries, PutManyOptions::default())
                .await
                .unwrap();
            s.get_many_opts("c", &["a", "zz"], GetOptions::default())
                .await
                .unwrap();
        });
        assert_eq!(
            event(&log, "put_many").field("value"),
            Some("{\"a\": ff00… (3 bytes), \"b\": 7f}")
        );
        assert_eq!(
            event(&log, "get_many").field("value"),
            Some("{\"a\": ff00… (3 bytes), \"zz\": <miss>}")
        );
    }

    #[test]
    fn text_is_escaped_and_cut_on_a_character_boundary() {
        let show = |v: &[u8], max: usize| {
            let values = Values::One(v);
            Shown {
                values: &values,
                max,
                format: ValueFormat::Text,
            }
            .to_string()
        };
        // "é" is 2 bytes: a cut after its first byte drops it rather than showing `�`.
        assert_eq!(show("aé".as_bytes(), 2), "\"a\"… (3 bytes)");
        assert_eq!(show("a€".as_bytes(), 3), "\"a\"… (4 bytes)");
        assert_eq!(show("a€".as_bytes(), 4), "\"a€\"");
        // Invalid bytes and line breaks cannot forge a log line.
        assert_eq!(show(b"x\xff\ny", 10), "\"x\u{FFFD}\\ny\"");
        assert_eq!(show(b"\xff\xfe", 1), "\"\u{FFFD}\"… (2 bytes)");
        assert_eq!(show(b"abc", 0), "\"\"… (3 bytes)");
        assert_eq!(show(b"", 0), "\"\"");
    }
}
