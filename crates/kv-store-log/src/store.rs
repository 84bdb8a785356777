//! The store: an append-only log file and an in-memory index of offsets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::{Future, ready};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};

use crate::config::{LogConfig, LogStoreBuilder};
use crate::format::{self, FORMAT_VERSION, LineIn, LineOut, Op, ValueIn};

use kv_engine::fs::{LockError, with_suffix};

const STORE: &str = crate::SCHEME;

/// An append-only log store: values stay in the file, only an index of offsets is in memory.
/// Cloning is cheap and shares the file.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use kv_core::{KvStore, KvStoreExt};
/// use kv_store_log::LogStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = LogStore::open_path(dir.path().join("kv.log"))?;
/// store.put("ages", "alice", &30).await?;
/// assert_eq!(store.get::<u32>("ages", "alice").await?, Some(30));
/// store.close().await?;
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    info: StoreInfo,
    config: LogConfig,
    /// `None` once closed. Reads share the lock (positioned reads); writes hold it exclusively.
    state: RwLock<Option<State>>,
}

/// Where an entry's `put` line is, and what the index needs without reading it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    offset: u64,
    len: u64,
    version: u64,
    expires_at: Option<Timestamp>,
}

type Index = HashMap<String, BTreeMap<String, Slot>>;

struct State {
    file: File,
    lock: kv_engine::fs::FileLock,
    /// The end of the valid data (where the next line goes).
    len: u64,
    /// Bytes no live entry needs: overwritten and deleted entries, tombstones, batch markers.
    dead: u64,
    index: Index,
    next_version: u64,
    /// Automatic compaction waits until the file is this long (raised after a failure).
    auto_compact_floor: u64,
    /// Set when a failed append could not be undone: the file may end in a partial line.
    broken: Option<String>,
}

/// Sizes of a log, from [`LogStore::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// The file's length in bytes.
    pub file_len: u64,
    /// Bytes a compaction would drop.
    pub dead_bytes: u64,
    /// Entries in the index (expired ones not yet culled included).
    pub entries: u64,
    /// The number of collections in the index.
    pub collections: u64,
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let closed = self.inner.read().is_none();
        f.debug_struct("LogStore")
            .field("path", &self.inner.config.path)
            .field("fsync", &self.inner.config.fsync)
            .field("default_collection", &self.inner.info.default_collection)
            .field("closed", &closed)
            .finish()
    }
}

impl LogStore {
    /// Opens (or creates) the store of a `log://PATH` URL (see [`LogConfig::from_url`]),
    /// replaying the log to rebuild the index.
    ///
    /// Errors: [`ErrorKind::Config`] for a bad URL, a missing directory, a path that is a
    /// directory or not writable, or a file that is not a kv log (left untouched);
    /// [`ErrorKind::Unavailable`] (not temporary) if another process — or another open store of
    /// this process — has the log open; [`ErrorKind::Corrupt`] for a damaged line that is not
    /// the last one (see [`LogConfig::repair`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("log://{}?fsync=false", dir.path().join("kv.log").display());
    /// let store = kv_store_log::LogStore::open(&url)?;
    /// assert!(!kv_core::KvStore::info(&store).capability.durable);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        let config = LogConfig::from_url(url).map_err(open_context)?;
        Self::from_config(config)
    }

    /// Opens (or creates) the log at `path` with the default settings.
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Self> {
        Self::from_config(LogConfig::new(path))
    }

    /// A builder for the log at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> LogStoreBuilder {
        LogStoreBuilder::new(path)
    }

    pub(crate) fn from_config(config: LogConfig) -> Result<Self> {
        config.validate().map_err(open_context)?;
        let (state, skipped) = open_log(&config).map_err(open_context)?;
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: std::time::Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            durable: config.fsync,
            shared: false,
            ..Capability::default()
        };
        let info = StoreInfo::new(STORE, config.location(), capability)
            .with_default_collection(config.default_collection.clone());
        let store = LogStore {
            inner: Arc::new(Inner {
                info,
                config,
                state: RwLock::new(Some(state)),
            }),
        };
        if skipped > 0 {
            // repair=true skipped damaged lines: rewrite the log without them.
            store.compact().map_err(open_context)?;
        }
        Ok(store)
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_log::LogStore::open_path(dir.path().join("kv.log"))?.sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Rewrites the log with only the live entries (expired ones are dropped) into
    /// `PATH.compact`, `fsync`s it and renames it over the log (atomic: a crash leaves either
    /// the old or the new file, both complete). Blocks every other operation while it runs.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = kv_store_log::LogStore::open_path(dir.path().join("kv.log"))?;
    /// let s = store.sync();
    /// for i in 0..10 { s.put("c", "k", &i)?; }
    /// assert!(store.stats()?.dead_bytes > 0);
    /// store.compact()?;
    /// assert_eq!(store.stats()?.dead_bytes, 0);
    /// assert_eq!(s.get::<i32>("c", "k")?, Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact(&self) -> Result<()> {
        let ctx = |e: Error| e.with_store(STORE).with_operation(Operation::Cull);
        let mut guard = self.inner.write();
        let st = guard.as_mut().ok_or_else(|| ctx(closed_error()))?;
        self.inner.compact(st).map_err(ctx)
    }

    /// `fsync`s the log: with `fsync=false`, makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        let guard = self.inner.read();
        let st = guard.as_ref().ok_or_else(closed_error)?;
        st.file.sync_data().map_err(Error::from)
    }

    /// The log's sizes.
    pub fn stats(&self) -> Result<LogStats> {
        let guard = self.inner.read();
        let st = guard.as_ref().ok_or_else(closed_error)?;
        Ok(LogStats {
            file_len: st.len,
            dead_bytes: st.dead,
            entries: st.index.values().map(|m| m.len() as u64).sum(),
            collections: st.index.len() as u64,
        })
    }

    /// Where the `put` line of an entry is in the file: `(offset, length)` in bytes, the
    /// length including the newline. For tools and tests; `None` if the index has no entry.
    pub fn entry_location(&self, collection: &str, key: &str) -> Result<Option<(u64, u64)>> {
        let name = self.inner.info.resolve(collection);
        let guard = self.inner.read();
        let st = guard.as_ref().ok_or_else(closed_error)?;
        Ok(st
            .index
            .get(name)
            .and_then(|m| m.get(key))
            .map(|s| (s.offset, s.len)))
    }
}

fn closed_error() -> Error {
    Error::new(ErrorKind::Closed, "the store was closed")
}

fn open_context(e: Error) -> Error {
    e.with_store(STORE).with_operation(Operation::Open)
}

#[inline]
fn is_live(slot: &Slot, now: &mut Option<Timestamp>) -> bool {
    slot.expires_at
        .is_none_or(|at| at > *now.get_or_insert_with(Timestamp::now))
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, Option<State>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<State>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_read<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        f: impl FnOnce(&State) -> Result<T>,
    ) -> Result<T> {
        let guard = self.read();
        let r = match guard.as_ref() {
            Some(st) => f(st),
            None => Err(closed_error()),
        };
        r.map_err(|e| e.with_context(STORE, op, collection, key))
    }

    fn with_write<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        f: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.write();
        let r = match guard.as_mut() {
            Some(st) => f(st).inspect(|_| self.maybe_compact(st)),
            None => Err(closed_error()),
        };
        r.map_err(|e| e.with_context(STORE, op, collection, key))
    }

    // ----- reads -----

    fn get(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        let name = self.info.resolve(collection);
        self.with_read(Operation::Get, Some(name), Some(key), |st| {
            match st.index.get(name).and_then(|m| m.get(key)) {
                Some(slot) if is_live(slot, &mut None) => {
                    read_entry(&st.file, name, key, slot).map(Some)
                }
                _ => Ok(None),
            }
        })
    }

    fn get_many(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let name = self.info.resolve(collection);
        self.with_read(Operation::GetMany, Some(name), None, |st| {
            let map = st.index.get(name);
            let mut now = None;
            keys.iter()
                .map(|k| match map.and_then(|m| m.get(*k)) {
                    Some(slot) if is_live(slot, &mut now) => read_entry(&st.file, name, k, slot)
                        .map(Some)
                        .map_err(|e| e.with_key(k)),
                    _ => Ok(None),
                })
                .collect()
        })
    }

    fn ttl(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        let name = self.info.resolve(collection);
        self.with_read(Operation::Ttl, Some(name), Some(key), |st| {
            let Some(slot) = st.index.get(name).and_then(|m| m.get(key)) else {
                return Ok(None);
            };
            // The line is checked, so a damaged entry is reported as such here too.
            let buf = read_at(&st.file, slot.offset, slot.len)?;
            format::verify(&buf)?;
            Ok(match slot.expires_at {
                None => Some(Ttl::Never),
                Some(at) => at
                    .duration_since(Timestamp::now())
                    .filter(|left| !left.is_zero())
                    .map(Ttl::Remaining),
            })
        })
    }

    fn scan(&self, collection: &str, opts: &ScanOptions) -> Result<ScanPage> {
        let name = self.info.resolve(collection);
        self.with_read(Operation::Scan, Some(name), None, |st| {
            let after = scan::key_after(opts)?;
            let Some(map) = st.index.get(name) else {
                return Ok(ScanPage::default());
            };
            let upper = scan::prefix_upper_bound(&opts.prefix);
            let lower = match after {
                Some(k) => Bound::Excluded(k),
                None if opts.prefix.is_empty() => Bound::Unbounded,
                None => Bound::Included(opts.prefix.as_str()),
            };
            let upper = match &upper {
                Some(u) => Bound::Excluded(u.as_str()),
                None => Bound::Unbounded,
            };
            let limit = opts.page_size.max(1);
            let mut items: Vec<ScanItem> = Vec::with_capacity(limit.min(1024));
            let mut cursor = None;
            let mut now = None;
            for (key, slot) in map.range::<str, _>((lower, upper)) {
                if !is_live(slot, &mut now) {
                    continue;
                }
                if items.len() == limit {
                    cursor = items.last().map(|i| scan::cursor_after(&i.key));
                    break;
                }
                let entry = if opts.keys_only {
                    None
                } else {
                    Some(read_entry(&st.file, name, key, slot).map_err(|e| e.with_key(key))?)
                };
                items.push(ScanItem::new(key.clone(), entry));
            }
            Ok(ScanPage::new(items, cursor))
        })
    }

    fn collections(&self) -> Result<Vec<String>> {
        self.with_read(Operation::Collections, None, None, |st| {
            let mut now = None;
            let mut names: Vec<String> = st
                .index
                .iter()
                .filter(|(_, m)| m.values().any(|s| is_live(s, &mut now)))
                .map(|(c, _)| c.clone())
                .collect();
            names.sort_unstable();
            Ok(names)
        })
    }

    // ----- writes -----

    /// Appends `buf` (whole lines) at the end of the file and `fsync`s it (unless
    /// `fsync=false`); returns the offset it was written at. A failed append is cut off again.
    fn append(&self, st: &mut State, buf: &[u8]) -> Result<u64> {
        if let Some(why) = &st.broken {
            return Err(Error::new(
                ErrorKind::Backend,
                format!("the log cannot take writes until it is reopened: {why}"),
            ));
        }
        let offset = st.len;
        let written = write_all_at(&st.file, buf, offset).and_then(|()| {
            if self.config.fsync {
                st.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            if let Err(undo) = st.file.set_len(offset) {
                st.broken = Some(format!(
                    "a failed write ({e}) could not be cut off ({undo})"
                ));
            }
            return Err(Error::from(e));
        }
        st.len = offset + buf.len() as u64;
        Ok(offset)
    }

    fn put(
        &self,
        collection: &str,
        key: &str,
        value: &[u8],
        mode: &PutMode,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let name = self.info.resolve(collection);
        self.with_write(Operation::Put, Some(name), Some(key), |st| {
            let current = st
                .index
                .get(name)
                .and_then(|m| m.get(key))
                .filter(|s| is_live(s, &mut Some(now)));
            match mode {
                PutMode::IfAbsent if current.is_some() => {
                    return Err(Error::new(
                        ErrorKind::ConditionFailed,
                        "an entry with this key exists",
                    ));
                }
                PutMode::IfVersion(expected)
                    if current.map(|s| s.version) != expected.as_u64() || current.is_none() =>
                {
                    return Err(Error::new(
                        ErrorKind::ConditionFailed,
                        "the entry is missing or was changed since this version was read",
                    ));
                }
                _ => {}
            }
            let version = st.next_version;
            let mut buf = Vec::with_capacity(value.len() + key.len() + name.len() + 128);
            encode_put(&mut buf, name, key, version, now, expires_at, value)?;
            let offset = self.append(st, &buf)?;
            st.next_version += 1;
            let slot = Slot {
                offset,
                len: buf.len() as u64,
                version,
                expires_at,
            };
            insert(st, name, key, slot);
            Ok(())
        })
    }

    fn put_many(
        &self,
        collection: &str,
        entries: &[(&str, &[u8])],
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let name = self.info.resolve(collection);
        self.with_write(Operation::PutMany, Some(name), None, |st| {
            if entries.is_empty() {
                return Ok(());
            }
            let size: usize = entries.iter().map(|(k, v)| k.len() + v.len() + 128).sum();
            let mut buf = Vec::with_capacity(size + 64);
            let marker = batch_marker(&mut buf, entries.len())?;
            let mut lines = Vec::with_capacity(entries.len());
            for (i, (key, value)) in entries.iter().enumerate() {
                let start = buf.len();
                let version = st.next_version + i as u64;
                encode_put(&mut buf, name, key, version, now, expires_at, value)
                    .map_err(|e| e.with_key(key))?;
                lines.push((start as u64, (buf.len() - start) as u64, version));
            }
            let offset = self.append(st, &buf)?;
            st.next_version += entries.len() as u64;
            st.dead += marker;
            for ((key, _), (start, len, version)) in entries.iter().zip(lines) {
                let slot = Slot {
                    offset: offset + start,
                    len,
                    version,
                    expires_at,
                };
                insert(st, name, key, slot);
            }
            Ok(())
        })
    }

    fn delete(&self, op: Operation, collection: &str, keys: &[&str]) -> Result<u64> {
        let name = self.info.resolve(collection);
        let single = (op == Operation::Delete)
            .then(|| keys.first().copied())
            .flatten();
        self.with_write(op, Some(name), single, |st| {
            let Some(map) = st.index.get(name) else {
                return Ok(0);
            };
            let mut seen = HashSet::new();
            let present: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| map.contains_key(*k) && seen.insert(*k))
                .collect();
            if present.is_empty() {
                return Ok(0);
            }
            let mut buf = Vec::with_capacity(present.len() * 64);
            batch_marker(&mut buf, present.len())?;
            for key in &present {
                let mut line = LineOut::new(Op::Del);
                line.c = Some(name);
                line.k = Some(key);
                format::encode_line(&line, &mut buf)?;
            }
            self.append(st, &buf)?;
            st.dead += buf.len() as u64;
            let mut now = None;
            let mut live = 0;
            if let Some(map) = st.index.get_mut(name) {
                for key in &present {
                    if let Some(old) = map.remove(*key) {
                        st.dead += old.len;
                        live += u64::from(is_live(&old, &mut now));
                    }
                }
                if map.is_empty() {
                    st.index.remove(name);
                }
            }
            Ok(live)
        })
    }

    fn clear(&self, collection: &str) -> Result<u64> {
        let name = self.info.resolve(collection);
        self.with_write(Operation::Clear, Some(name), None, |st| {
            if !st.index.contains_key(name) {
                return Ok(0);
            }
            let mut buf = Vec::new();
            let mut line = LineOut::new(Op::Clear);
            line.c = Some(name);
            format::encode_line(&line, &mut buf)?;
            self.append(st, &buf)?;
            st.dead += buf.len() as u64;
            let map = st.index.remove(name).unwrap_or_default();
            let mut now = None;
            let mut live = 0;
            for slot in map.values() {
                st.dead += slot.len;
                live += u64::from(is_live(slot, &mut now));
            }
            Ok(live)
        })
    }

    fn destroy(&self) -> Result<()> {
        self.with_write(Operation::Destroy, None, None, |st| {
            let saved = std::mem::take(&mut st.index);
            let r = self.compact(st);
            if r.is_err() {
                st.index = saved;
            }
            r
        })
    }

    fn cull(&self) -> Result<u64> {
        self.with_write(Operation::Cull, None, None, |st| {
            let now = Timestamp::now();
            let mut removed = 0;
            let mut dead = 0;
            for map in st.index.values_mut() {
                map.retain(|_, slot| {
                    let expired = slot.expires_at.is_some_and(|at| at <= now);
                    if expired {
                        removed += 1;
                        dead += slot.len;
                    }
                    !expired
                });
            }
            st.index.retain(|_, m| !m.is_empty());
            st.dead += dead;
            if removed > 0 {
                self.compact(st)?;
            }
            Ok(removed)
        })
    }

    fn close(&self) -> Result<()> {
        let Some(st) = self.write().take() else {
            return Ok(());
        };
        let r = st.file.sync_data().map_err(|e| {
            Error::from(e)
                .with_store(STORE)
                .with_operation(Operation::Close)
        });
        let _ = st.lock.unlock();
        r
    }

    // ----- compaction -----

    fn maybe_compact(&self, st: &mut State) {
        let ratio = self.config.compact_ratio;
        if ratio <= 0.0
            || st.len < self.config.compact_min_bytes
            || st.len < st.auto_compact_floor
            || (st.dead as f64) < ratio * st.len as f64
        {
            return;
        }
        // The write that triggered this is already durable; a failed compaction leaves the
        // log as it was and is retried once the file has doubled.
        if self.compact(st).is_err() {
            st.auto_compact_floor = st.len.saturating_mul(2);
        }
    }

    /// Writes the live entries to `PATH.compact` and renames it over the log.
    fn compact(&self, st: &mut State) -> Result<()> {
        let path = &self.config.path;
        let tmp = with_suffix(path, ".compact");
        let now = Timestamp::now();
        // Expired entries are dropped.
        let mut dropped = 0;
        for map in st.index.values_mut() {
            map.retain(|_, s| {
                let keep = s.expires_at.is_none_or(|at| at > now);
                dropped += u64::from(!keep);
                keep
            });
        }
        st.index.retain(|_, m| !m.is_empty());
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io_error(e, &tmp, "cannot create"))?;
        let written = (|| -> Result<(u64, Vec<u64>)> {
            let mut w = BufWriter::with_capacity(1 << 16, &out);
            let mut header = Vec::new();
            encode_header(&mut header, st.next_version)?;
            w.write_all(&header).map_err(Error::from)?;
            let mut pos = header.len() as u64;
            let mut offsets = Vec::new();
            for (c, map) in &st.index {
                for (k, slot) in map {
                    let buf = read_at(&st.file, slot.offset, slot.len)?;
                    format::verify(&buf).map_err(|e| e.with_collection(c).with_key(k))?;
                    w.write_all(&buf).map_err(Error::from)?;
                    offsets.push(pos);
                    pos += slot.len;
                }
            }
            w.flush().map_err(Error::from)?;
            drop(w);
            out.sync_all().map_err(Error::from)?;
            Ok((pos, offsets))
        })();
        let (len, offsets) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(e, path, "cannot replace"));
        }
        // The rename is the commit point: from here on the new file is the log.
        st.file = out;
        st.len = len;
        st.dead = 0;
        st.auto_compact_floor = 0;
        st.broken = None;
        let mut it = offsets.into_iter();
        for map in st.index.values_mut() {
            for slot in map.values_mut() {
                slot.offset = it.next().unwrap_or(slot.offset);
            }
        }
        sync_parent(path)
    }
}

fn insert(st: &mut State, collection: &str, key: &str, slot: Slot) {
    let map = match st.index.get_mut(collection) {
        Some(m) => m,
        None => st.index.entry(collection.to_owned()).or_default(),
    };
    if let Some(old) = map.insert(key.to_owned(), slot) {
        st.dead += old.len;
    }
}

/// Writes a batch marker for `n` lines if `n > 1`; returns its length.
fn batch_marker(buf: &mut Vec<u8>, n: usize) -> Result<u64> {
    if n <= 1 {
        return Ok(0);
    }
    let mut line = LineOut::new(Op::Batch);
    line.n = Some(n as u64);
    format::encode_line(&line, buf)?;
    Ok(buf.len() as u64)
}

fn encode_header(buf: &mut Vec<u8>, next_version: u64) -> Result<()> {
    let mut line = LineOut::new(Op::Header);
    line.format = Some(FORMAT_VERSION);
    line.next_version = Some(next_version);
    format::encode_line(&line, buf)
}

fn encode_put(
    buf: &mut Vec<u8>,
    collection: &str,
    key: &str,
    version: u64,
    now: Timestamp,
    expires_at: Option<Timestamp>,
    value: &[u8],
) -> Result<()> {
    let mut line = LineOut::new(Op::Put);
    line.c = Some(collection);
    line.k = Some(key);
    line.ver = Some(version);
    line.ct = Some(now.as_unix_micros());
    line.exp = expires_at.map(Timestamp::as_unix_micros);
    let b64;
    match std::str::from_utf8(value) {
        Ok(text) => line.v = Some(text),
        Err(_) => {
            b64 = format::base64_encode(value);
            line.b = Some(&b64);
        }
    }
    format::encode_line(&line, buf)
}

fn read_entry(file: &File, collection: &str, key: &str, slot: &Slot) -> Result<Entry> {
    let buf = read_at(file, slot.offset, slot.len)?;
    let line: ValueIn = format::parse(&buf)?;
    if line.op != Op::Put || line.c.as_deref() != Some(collection) || line.k.as_deref() != Some(key)
    {
        return Err(Error::new(
            ErrorKind::Corrupt,
            "damaged log: the index points at a line of another entry",
        ));
    }
    let value = match (line.v, line.b) {
        (Some(v), None) => Bytes::from(v.into_bytes()),
        (None, Some(b)) => Bytes::from(format::base64_decode(&b)?),
        _ => {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "damaged log line: a put needs exactly one of `v` and `b`",
            ));
        }
    };
    Ok(Entry::new(value)
        .with_created_at(line.ct.map(Timestamp::from_unix_micros))
        .with_expires_at(line.exp.map(Timestamp::from_unix_micros))
        .with_version(line.ver.map(Version::from_u64)))
}

// ----- files -----

fn io_error(e: std::io::Error, path: &Path, what: &str) -> Error {
    use std::io::ErrorKind as Io;
    let p = path.display();
    let (kind, why) = match e.kind() {
        Io::NotFound
            if path
                .parent()
                .is_some_and(|d| !d.as_os_str().is_empty() && !d.exists()) =>
        {
            (ErrorKind::Config, "its directory does not exist".to_owned())
        }
        Io::PermissionDenied => (ErrorKind::Config, "permission denied".to_owned()),
        Io::IsADirectory => (ErrorKind::Config, "it is a directory".to_owned()),
        Io::NotADirectory => (
            ErrorKind::Config,
            "a component of the path is not a directory".to_owned(),
        ),
        Io::ReadOnlyFilesystem => (ErrorKind::Config, "the file system is read-only".to_owned()),
        Io::StorageFull | Io::QuotaExceeded => {
            (ErrorKind::Unavailable, "the disk is full".to_owned())
        }
        _ => (
            Error::from(std::io::Error::from(e.kind())).kind(),
            e.to_string(),
        ),
    };
    Error::new(kind, format!("{what} {p}: {why}"))
        .temporary(false)
        .with_source(e)
}

fn sync_parent(path: &Path) -> Result<()> {
    kv_engine::fs::sync_parent(path).map_err(Error::from)
}

fn read_at(file: &File, offset: u64, len: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(len)
        .map_err(|_| Error::new(ErrorKind::Corrupt, "a log line is larger than memory"))?;
    let mut buf = vec![0u8; len];
    read_exact_at(file, &mut buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::new(
                ErrorKind::Corrupt,
                "damaged log: the file is shorter than its index",
            )
        } else {
            Error::from(e)
        }
    })?;
    Ok(buf)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

// ----- open and replay -----

const HEADER_START: &[u8] = b"{\"op\":\"header\"";

/// Opens the log (creating it), takes the lock and replays it. Returns the state and how many
/// damaged lines were skipped (only with `repair`).
fn open_log(config: &LogConfig) -> Result<(State, u64)> {
    let path = &config.path;
    let lock_path = with_suffix(path, ".lock");
    let lock = kv_engine::fs::lock_file(&lock_path).map_err(|e| match e {
        LockError::Locked => kv_engine::fs::locked(path, Some("a log has one writer at a time")),
        LockError::Open(e) => io_error(e, &lock_path, "cannot create the lock file"),
        LockError::Lock(e) => io_error(e, &lock_path, "cannot lock"),
    })?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error(e, path, "cannot open"))?;
    let file_len = file
        .metadata()
        .map_err(|e| io_error(e, path, "cannot open"))?
        .len();
    let mut replay = Replay::default();
    let mut cut = None;
    if file_len > 0 {
        cut = replay.run(&file, file_len, path, config.repair)?;
    }
    let mut len = file_len;
    if let Some(at) = cut {
        // An interrupted last write: never acknowledged, so cut it off before appending.
        file.set_len(at)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(e, path, "cannot truncate the torn end of"))?;
        len = at;
    }
    let next_version = replay
        .header_next
        .max(replay.max_version.saturating_add(1))
        .max(1);
    if len == 0 {
        let mut header = Vec::new();
        encode_header(&mut header, next_version)?;
        write_all_at(&file, &header, 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(e, path, "cannot write"))?;
        sync_parent(path)?;
        len = header.len() as u64;
    }
    Ok((
        State {
            file,
            lock,
            len,
            dead: replay.dead,
            index: replay.index,
            next_version,
            auto_compact_floor: 0,
            broken: None,
        },
        replay.skipped,
    ))
}

#[derive(Default)]
struct Replay {
    index: Index,
    dead: u64,
    max_version: u64,
    header_next: u64,
    skipped: u64,
}

struct Pending {
    start: u64,
    remaining: u64,
    marker_len: u64,
    lines: Vec<(LineIn, u64, u64)>,
}

impl Replay {
    /// Reads the whole log; returns where to cut off an interrupted last write, if any.
    fn run(
        &mut self,
        file: &File,
        file_len: u64,
        path: &Path,
        repair: bool,
    ) -> Result<Option<u64>> {
        let p = path.display();
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut buf = Vec::new();
        let mut pos = 0u64;
        let mut pending: Option<Pending> = None;
        let mut skip_lines = 0u64;
        let read_err = |e: std::io::Error| io_error(e, path, "cannot read");

        // The header.
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)? as u64;
        pos += n;
        match format::parse::<LineIn>(&buf) {
            Ok(h) if h.op == Op::Header && buf.ends_with(b"\n") => {
                if h.format != Some(FORMAT_VERSION) {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{p} is in kv log format {:?}; this version reads format {FORMAT_VERSION}",
                            h.format
                        ),
                    ));
                }
                self.header_next = h.next_version.unwrap_or(1);
            }
            _ => {
                let torn = pos == file_len
                    && (buf.starts_with(HEADER_START) || HEADER_START.starts_with(&buf));
                if torn {
                    // The store crashed while creating the file.
                    return Ok(Some(0));
                }
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{p} is not a kv log file (its first line is not a kv log header); it was left untouched"
                    ),
                ));
            }
        }

        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(read_err)? as u64;
            if n == 0 {
                break;
            }
            let start = pos;
            pos += n;
            if skip_lines > 0 {
                skip_lines -= 1;
                self.dead += n;
                continue;
            }
            let parsed = if buf.ends_with(b"\n") {
                format::parse::<LineIn>(&buf).and_then(|l| check(l, pending.is_some()))
            } else {
                Err(Error::new(ErrorKind::Corrupt, "incomplete line"))
            };
            match parsed {
                Ok(line) => {
                    if let Some(b) = pending.as_mut() {
                        b.lines.push((line, start, n));
                        b.remaining -= 1;
                        if b.remaining == 0
                            && let Some(b) = pending.take()
                        {
                            self.dead += b.marker_len;
                            for (line, start, n) in b.lines {
                                self.apply(line, start, n);
                            }
                        }
                    } else if line.op == Op::Batch {
                        pending = Some(Pending {
                            start,
                            remaining: line.n.unwrap_or(0),
                            marker_len: n,
                            lines: Vec::new(),
                        });
                    } else {
                        self.apply(line, start, n);
                    }
                }
                Err(e) => {
                    let from = pending.as_ref().map_or(start, |b| b.start);
                    if pos >= file_len {
                        return Ok(Some(from));
                    }
                    if !repair {
                        return Err(Error::new(
                            ErrorKind::Corrupt,
                            format!(
                                "{p}: damaged line at byte {start} ({}), with more data after it, so it is not an interrupted write; open with repair=true to skip damaged lines (their entries are lost)",
                                e.message()
                            ),
                        ));
                    }
                    self.skipped += 1;
                    self.dead += n;
                    if let Some(b) = pending.take() {
                        // The whole batch is dropped, the lines it still announces included.
                        self.dead += start - b.start;
                        skip_lines = b.remaining.saturating_sub(1);
                    }
                }
            }
        }
        Ok(pending.map(|b| b.start))
    }

    fn apply(&mut self, line: LineIn, start: u64, len: u64) {
        let (Some(c), k) = (line.c, line.k) else {
            return;
        };
        match line.op {
            Op::Put => {
                let (Some(k), Some(ver)) = (k, line.ver) else {
                    return;
                };
                self.max_version = self.max_version.max(ver);
                let slot = Slot {
                    offset: start,
                    len,
                    version: ver,
                    expires_at: line.exp.map(Timestamp::from_unix_micros),
                };
                if let Some(old) = self.index.entry(c).or_default().insert(k, slot) {
                    self.dead += old.len;
                }
            }
            Op::Del => {
                self.dead += len;
                if let (Some(k), Some(map)) = (k, self.index.get_mut(&c)) {
                    if let Some(old) = map.remove(&k) {
                        self.dead += old.len;
                    }
                    if map.is_empty() {
                        self.index.remove(&c);
                    }
                }
            }
            Op::Clear => {
                self.dead += len;
                if let Some(map) = self.index.remove(&c) {
                    self.dead += map.values().map(|s| s.len).sum::<u64>();
                }
            }
            Op::Header | Op::Batch => {}
        }
    }
}

/// Structural checks of a line whose checksum is good.
fn check(line: LineIn, in_batch: bool) -> Result<LineIn> {
    let bad = |what: &str| {
        Err(Error::new(
            ErrorKind::Corrupt,
            format!("invalid log record: {what}"),
        ))
    };
    match line.op {
        Op::Header => bad("a header after the first line"),
        Op::Batch if in_batch => bad("a batch inside a batch"),
        Op::Batch if line.n.is_none_or(|n| n < 1) => bad("a batch without lines"),
        Op::Clear if in_batch => bad("a clear inside a batch"),
        Op::Put if line.c.is_none() || line.k.is_none() || line.ver.is_none() => {
            bad("a put without collection, key or version")
        }
        Op::Del if line.c.is_none() || line.k.is_none() => {
            bad("a tombstone without collection or key")
        }
        Op::Clear if line.c.is_none() => bad("a clear without collection"),
        _ => Ok(line),
    }
}

// ----- running writes -----

fn check_mode(mode: &PutMode) -> Result<()> {
    match mode {
        PutMode::Upsert | PutMode::IfAbsent | PutMode::IfVersion(_) => Ok(()),
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("put mode {other:?} is not supported"),
        )),
    }
}

/// Runs `f` on tokio's blocking pool (when `fsync` makes it wait for the disk), or on this
/// thread outside a tokio runtime or without `fsync`.
async fn run_blocking<T, F>(op: Operation, offload: bool, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    if !offload {
        return f();
    }
    kv_engine::blocking::run_blocking(STORE, op, f).await
}

impl LogStore {
    fn offload(&self) -> bool {
        self.inner.config.fsync
    }
}

impl KvStore for LogStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        ready(self.inner.get(collection, key))
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        ready(self.inner.get_many(collection, keys))
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let op = Operation::Put;
        let now = Timestamp::now();
        let checked =
            ttl::expires_at(now, opts.ttl).and_then(|e| check_mode(&opts.mode).map(|()| e));
        let inner = self.inner.clone();
        let offload = self.offload();
        let collection = collection.to_owned();
        let key = key.to_owned();
        async move {
            let expires_at = checked.map_err(|e| {
                e.with_context(STORE, op, Some(inner.info.resolve(&collection)), Some(&key))
            })?;
            run_blocking(op, offload, move || {
                inner.put(&collection, &key, &value, &opts.mode, now, expires_at)
            })
            .await
        }
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let op = Operation::PutMany;
        let now = Timestamp::now();
        let checked = ttl::expires_at(now, opts.ttl);
        let inner = self.inner.clone();
        let offload = self.offload();
        let collection = collection.to_owned();
        let entries: Vec<(String, Bytes)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        async move {
            let expires_at = checked.map_err(|e| {
                e.with_context(STORE, op, Some(inner.info.resolve(&collection)), None)
            })?;
            run_blocking(op, offload, move || {
                let refs: Vec<(&str, &[u8])> =
                    entries.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
                inner.put_many(&collection, &refs, now, expires_at)
            })
            .await
        }
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        let inner = self.inner.clone();
        let offload = self.offload();
        let collection = collection.to_owned();
        let key = key.to_owned();
        async move {
            run_blocking(Operation::Delete, offload, move || {
                inner.delete(Operation::Delete, &collection, &[key.as_str()])
            })
            .await
            .map(|n| n > 0)
        }
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let inner = self.inner.clone();
        let offload = self.offload();
        let collection = collection.to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        run_blocking(Operation::DeleteMany, offload, move || {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            inner.delete(Operation::DeleteMany, &collection, &refs)
        })
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        ready(self.inner.ttl(collection, key))
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        ready(self.inner.scan(collection, &opts))
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        ready(self.inner.collections())
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let inner = self.inner.clone();
        let offload = self.offload();
        let collection = collection.to_owned();
        run_blocking(Operation::Clear, offload, move || inner.clear(&collection))
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        let inner = self.inner.clone();
        run_blocking(Operation::Destroy, true, move || inner.destroy())
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        let inner = self.inner.clone();
        run_blocking(Operation::Cull, true, move || inner.cull())
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        let inner = self.inner.clone();
        run_blocking(Operation::Close, true, move || inner.close())
    }
}
