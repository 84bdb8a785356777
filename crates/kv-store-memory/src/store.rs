//! The store: a linked hash map per collection behind read-write locks.

use std::collections::BTreeSet;
use std::fmt;
use std::future::{Future, ready};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hashlink::LinkedHashMap;
use hashlink::linked_hash_map::RawEntryMut;
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};

use crate::config::{MemoryConfig, MemoryStoreBuilder};

const STORE: &str = crate::SCHEME;

/// An in-process key-value store. Cloning is cheap and shares the data.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use kv_core::KvStoreExt;
/// use kv_store_memory::MemoryStore;
///
/// let store = MemoryStore::new();
/// store.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(60)).await?;
/// assert_eq!(store.get::<String>("sessions", "s1").await?.as_deref(), Some("token"));
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    info: StoreInfo,
    max_entries: Option<usize>,
    collections: RwLock<LinkedHashMap<Box<str>, RwLock<Coll>>>,
    /// Store-wide write counter: every write gets a new version for compare-and-swap.
    last_version: AtomicU64,
    closed: AtomicBool,
}

/// How many entries a filtered scan page examines at most (see `scan_sync`).
const SEARCH_BUDGET: usize = 10_000;

#[derive(Clone)]
struct Slot {
    value: Bytes,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    version: u64,
}

impl Slot {
    #[inline]
    fn is_live(&self, now: &mut Option<Timestamp>) -> bool {
        match self.expires_at {
            None => true,
            // The clock is read at most once per operation, and only if an entry expires.
            Some(e) => e > *now.get_or_insert_with(Timestamp::now),
        }
    }

    fn entry(&self) -> Entry {
        Entry::new(self.value.clone())
            .with_created_at(Some(self.created_at))
            .with_expires_at(self.expires_at)
            .with_version(Some(Version::from_u64(self.version)))
    }
}

/// One collection. Expired entries stay until a sweep, `cull` or eviction removes them; to
/// keep a store with TTLs from growing without bound, writes sweep the collection once for
/// every `len` writes (amortised O(1)).
///
/// `index` holds the same keys in order, so a scan page costs O(log n + page) instead of a
/// pass over the whole map. It is built by the collection's first scan and kept up to date
/// from then on (one ordered insert per new key; overwrites are free): a collection that is
/// never scanned never pays for it, which makes inserting a new key about a third cheaper.
struct Coll {
    map: LinkedHashMap<Arc<str>, Slot>,
    index: Option<BTreeSet<Arc<str>>>,
    writes_since_sweep: usize,
    may_hold_expiring: bool,
}

const MIN_WRITES_BETWEEN_SWEEPS: usize = 1024;

impl Coll {
    fn new() -> Self {
        Coll {
            map: LinkedHashMap::new(),
            index: None,
            writes_since_sweep: 0,
            may_hold_expiring: false,
        }
    }

    /// The ordered index, built from the map on first use.
    fn index(&mut self) -> &BTreeSet<Arc<str>> {
        let map = &self.map;
        self.index
            .get_or_insert_with(|| map.keys().map(Arc::clone).collect())
    }

    fn unindex(&mut self, key: &str) {
        if let Some(index) = &mut self.index {
            index.remove(key);
        }
    }

    fn live(&self, key: &str, now: &mut Option<Timestamp>) -> Option<&Slot> {
        self.map.get(key).filter(|s| s.is_live(now))
    }

    fn live_count(&self, now: &mut Option<Timestamp>) -> u64 {
        self.map.values().filter(|s| s.is_live(now)).count() as u64
    }

    /// Removes expired entries; returns how many.
    fn sweep(&mut self, now: &mut Option<Timestamp>) -> u64 {
        let before = self.map.len();
        let mut expiring = false;
        let mut expired = Vec::new();
        let indexed = self.index.is_some();
        self.map.retain(|k, s| {
            let live = s.is_live(now);
            expiring |= live && s.expires_at.is_some();
            if !live && indexed {
                expired.push(Arc::clone(k));
            }
            live
        });
        for k in &expired {
            self.unindex(k);
        }
        self.may_hold_expiring = expiring;
        self.writes_since_sweep = 0;
        (before - self.map.len()) as u64
    }

    /// Inserts or replaces, moving the key to the most-recently-used end, then evicts the
    /// least recently used entries beyond `max`.
    fn write(&mut self, key: &str, slot: Slot, max: Option<usize>, now: &mut Option<Timestamp>) {
        self.may_hold_expiring |= slot.expires_at.is_some();
        match self.map.raw_entry_mut().from_key(key) {
            RawEntryMut::Occupied(mut o) => {
                o.replace_value(slot);
                // Recency only matters to a bounded (LRU) store; relinking costs every write.
                if max.is_some() {
                    o.to_back();
                }
            }
            RawEntryMut::Vacant(v) => {
                let key: Arc<str> = key.into();
                if let Some(index) = &mut self.index {
                    index.insert(Arc::clone(&key));
                }
                v.insert(key, slot);
            }
        }
        self.writes_since_sweep += 1;
        if self.may_hold_expiring
            && self.writes_since_sweep >= self.map.len().max(MIN_WRITES_BETWEEN_SWEEPS)
        {
            self.sweep(now);
        }
        if let Some(max) = max {
            while self.map.len() > max {
                if let Some((k, _)) = self.map.pop_front() {
                    self.unindex(&k);
                }
            }
        }
    }

    fn remove_live(&mut self, key: &str, now: &mut Option<Timestamp>) -> bool {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.unindex(key);
        }
        removed.is_some_and(|s| s.is_live(now))
    }
}

// Poisoning only means another thread panicked while holding the lock; every critical
// section here leaves the map consistent, so the data is still good.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_entries_per_collection", &self.shared.max_entries)
            .field("collections", &read(&self.shared.collections).len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty, unbounded store.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// The same store with blocking methods, for code without an async runtime.
    ///
    /// ```
    /// let store = kv_store_memory::MemoryStore::new().sync();
    /// store.put("users", "alice", &30)?;
    /// assert_eq!(store.get::<u32>("users", "alice")?, Some(30));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    /// A builder for bounded or seeded stores.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// A store from a `memory://` URL (see [`MemoryConfig::from_url`]).
    pub fn open(url: &str) -> Result<Self> {
        let config = MemoryConfig::from_url(url)
            .map_err(|e| e.with_store(STORE).with_operation(Operation::Open))?;
        Ok(MemoryStoreBuilder::from_config(config).build())
    }

    pub(crate) fn from_parts(config: MemoryConfig, seed: Vec<(String, String, Bytes)>) -> Self {
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: false,
            ttl_granularity: Duration::from_micros(1),
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            evicts: config.max_entries_per_collection.is_some(),
            ..Capability::default()
        };
        let location = match config.max_entries_per_collection {
            Some(n) => format!("memory://?max_entries={n}"),
            None => "memory://".to_owned(),
        };
        let info = StoreInfo::new(STORE, location, capability)
            .with_default_collection(config.default_collection);
        let store = MemoryStore {
            shared: Arc::new(Shared {
                info,
                max_entries: config.max_entries_per_collection,
                collections: RwLock::new(LinkedHashMap::new()),
                last_version: AtomicU64::new(0),
                closed: AtomicBool::new(false),
            }),
        };
        let now = Timestamp::now();
        for (c, k, v) in seed {
            let c = store.shared.info.resolve(&c).to_owned();
            store.with_coll_mut(&c, |coll, version| {
                let slot = Slot {
                    value: v,
                    created_at: now,
                    expires_at: None,
                    version: version(),
                };
                coll.write(&k, slot, store.shared.max_entries, &mut None);
            });
        }
        store
    }

    fn check_open(&self, op: Operation) -> Result<()> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(Error::new(ErrorKind::Closed, "the store was closed")
                .with_store(STORE)
                .with_operation(op));
        }
        Ok(())
    }

    fn next_version(&self) -> u64 {
        self.shared.last_version.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Runs `f` on a collection under a read lock (`None` if it does not exist).
    fn with_coll<R>(&self, name: &str, f: impl FnOnce(Option<&RwLock<Coll>>) -> R) -> R {
        let colls = read(&self.shared.collections);
        f(colls.get(name))
    }

    /// Runs `f` on a collection under its write lock, creating the collection if needed. The
    /// collections lock is held (shared) throughout, so `clear`/`destroy` cannot detach the
    /// collection while a write lands in it.
    fn with_coll_mut<R>(&self, name: &str, f: impl FnOnce(&mut Coll, &dyn Fn() -> u64) -> R) -> R {
        let version = || self.next_version();
        {
            let colls = read(&self.shared.collections);
            if let Some(c) = colls.get(name) {
                return f(&mut write(c), &version);
            }
        }
        let mut colls = write(&self.shared.collections);
        let c = colls
            .entry(name.into())
            .or_insert_with(|| RwLock::new(Coll::new()));
        f(c.get_mut().unwrap_or_else(|e| e.into_inner()), &version)
    }

    fn get_sync(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        self.check_open(Operation::Get)?;
        let name = self.shared.info.resolve(collection);
        let bounded = self.shared.max_entries.is_some();
        self.with_coll(name, |coll| {
            let Some(coll) = coll else { return Ok(None) };
            let mut now = None;
            if bounded {
                // A read refreshes the entry's place in the LRU order.
                let mut c = write(coll);
                let c = &mut *c;
                match c.map.to_back(key) {
                    Some(s) if s.is_live(&mut now) => Ok(Some(s.entry())),
                    _ => Ok(None),
                }
            } else {
                Ok(read(coll).live(key, &mut now).map(Slot::entry))
            }
        })
    }

    fn get_many_sync(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        self.check_open(Operation::GetMany)?;
        let name = self.shared.info.resolve(collection);
        let bounded = self.shared.max_entries.is_some();
        self.with_coll(name, |coll| {
            let Some(coll) = coll else {
                return Ok(vec![None; keys.len()]);
            };
            let mut now = None;
            if bounded {
                let mut c = write(coll);
                Ok(keys
                    .iter()
                    .map(|k| match c.map.to_back(*k) {
                        Some(s) if s.is_live(&mut now) => Some(s.entry()),
                        _ => None,
                    })
                    .collect())
            } else {
                let c = read(coll);
                Ok(keys
                    .iter()
                    .map(|k| c.live(k, &mut now).map(Slot::entry))
                    .collect())
            }
        })
    }

    fn put_sync(&self, collection: &str, key: &str, value: Bytes, opts: PutOptions) -> Result<()> {
        self.check_open(Operation::Put)?;
        let name = self.shared.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, Operation::Put, Some(name), Some(key));
        let now = Timestamp::now();
        let expires_at = ttl::expires_at(now, opts.ttl).map_err(ctx)?;
        let max = self.shared.max_entries;
        self.with_coll_mut(name, |coll, version| {
            let mut now_opt = Some(now);
            match &opts.mode {
                PutMode::Upsert => {}
                PutMode::IfAbsent => {
                    if coll.live(key, &mut now_opt).is_some() {
                        return Err(ctx(Error::new(
                            ErrorKind::ConditionFailed,
                            "an entry with this key exists",
                        )));
                    }
                }
                PutMode::IfVersion(expected) => {
                    let current = coll.live(key, &mut now_opt).map(|s| s.version);
                    if current.is_none() || current != expected.as_u64() {
                        return Err(ctx(Error::new(
                            ErrorKind::ConditionFailed,
                            "the entry is missing or was changed since this version was read",
                        )));
                    }
                }
                other => {
                    return Err(ctx(Error::new(
                        ErrorKind::Unsupported,
                        format!("put mode {other:?} is not supported"),
                    )));
                }
            }
            let slot = Slot {
                value,
                created_at: now,
                expires_at,
                version: version(),
            };
            coll.write(key, slot, max, &mut now_opt);
            Ok(())
        })
    }

    fn put_many_sync(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        self.check_open(Operation::PutMany)?;
        let name = self.shared.info.resolve(collection);
        let now = Timestamp::now();
        let expires_at = ttl::expires_at(now, opts.ttl)
            .map_err(|e| e.with_context(STORE, Operation::PutMany, Some(name), None))?;
        if entries.is_empty() {
            return Ok(());
        }
        let max = self.shared.max_entries;
        self.with_coll_mut(name, |coll, version| {
            let mut now_opt = Some(now);
            for (k, v) in entries {
                let slot = Slot {
                    value: v.clone(),
                    created_at: now,
                    expires_at,
                    version: version(),
                };
                coll.write(k, slot, max, &mut now_opt);
            }
        });
        Ok(())
    }

    fn delete_many_sync(&self, op: Operation, collection: &str, keys: &[&str]) -> Result<u64> {
        self.check_open(op)?;
        let name = self.shared.info.resolve(collection);
        self.with_coll(name, |coll| {
            let Some(coll) = coll else { return Ok(0) };
            let mut c = write(coll);
            let mut now = None;
            Ok(keys.iter().filter(|k| c.remove_live(k, &mut now)).count() as u64)
        })
    }

    fn ttl_sync(&self, collection: &str, key: &str) -> Result<Option<Ttl>> {
        self.check_open(Operation::Ttl)?;
        let name = self.shared.info.resolve(collection);
        self.with_coll(name, |coll| {
            let Some(coll) = coll else { return Ok(None) };
            let c = read(coll);
            let Some(slot) = c.map.get(key) else {
                return Ok(None);
            };
            let now = Timestamp::now();
            match slot.expires_at {
                None => Ok(Some(Ttl::Never)),
                Some(e) if e > now => Ok(Some(Ttl::Remaining(
                    e.duration_since(now).unwrap_or_default(),
                ))),
                Some(_) => Ok(None),
            }
        })
    }

    fn scan_sync(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        self.check_open(Operation::Scan)?;
        let name = self.shared.info.resolve(collection);
        let ctx = |e: Error| e.with_context(STORE, Operation::Scan, Some(name), None);
        self.with_coll(name, |coll| {
            let Some(coll) = coll else {
                // Still validate the cursor, so a bad one is reported the same way always.
                scan::key_after(&opts).map_err(ctx)?;
                return Ok(ScanPage::default());
            };
            // The first scan of a collection builds its index (under the write lock, once).
            let c = loop {
                let c = read(coll);
                if c.index.is_some() {
                    break c;
                }
                drop(c);
                write(coll).index();
            };
            let no_index = BTreeSet::new();
            let index = c.index.as_ref().unwrap_or(&no_index);
            let mut now = None;
            let after = scan::key_after(&opts).map_err(ctx)?;
            let prefix = opts.prefix.as_str();
            let start = match after {
                Some(a) => Bound::Excluded(a),
                None => Bound::Included(prefix),
            };
            let limit = opts.page_size.max(1);
            // A search filter is evaluated here, before values are cloned; a page then stops
            // after SEARCH_BUDGET candidates even if it found fewer matches, so one call never
            // holds the lock for a whole large collection.
            let filter = opts.filter();
            let budget = if filter.is_some() {
                limit.saturating_mul(8).max(SEARCH_BUDGET)
            } else {
                usize::MAX
            };
            let mut candidates = index
                .range::<str, _>((start, Bound::Unbounded))
                .take_while(|k| k.starts_with(prefix))
                .map(|k| &**k)
                .filter(|k| c.map.get(*k).is_some_and(|s| s.is_live(&mut now)));
            let mut keys: Vec<&str> = Vec::new();
            let mut last_seen = None;
            let mut more = false;
            for (seen, k) in candidates.by_ref().enumerate() {
                if keys.len() == limit || seen == budget {
                    more = true;
                    break;
                }
                last_seen = Some(k);
                let keep = filter.is_none_or(|f| {
                    f.matches_key(k)
                        && (!f.needs_values()
                            || c.map.get(k).is_some_and(|s| f.matches_value(&s.value)))
                });
                if keep {
                    keys.push(k);
                }
            }
            let cursor = more.then(|| last_seen.map(scan::cursor_after)).flatten();
            let items = keys
                .into_iter()
                .map(|k| {
                    let entry = if opts.keys_only {
                        None
                    } else {
                        c.map.get(k).map(Slot::entry)
                    };
                    ScanItem::new(k.to_owned(), entry)
                })
                .collect();
            Ok(ScanPage::new(items, cursor))
        })
    }

    fn collections_sync(&self) -> Result<Vec<String>> {
        self.check_open(Operation::Collections)?;
        let colls = read(&self.shared.collections);
        let mut now = None;
        let mut names: Vec<String> = colls
            .iter()
            .filter(|(_, c)| read(c).map.values().any(|s| s.is_live(&mut now)))
            .map(|(n, _)| n.to_string())
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    fn clear_sync(&self, collection: &str) -> Result<u64> {
        self.check_open(Operation::Clear)?;
        let name = self.shared.info.resolve(collection);
        let removed = write(&self.shared.collections).remove(name);
        let mut now = None;
        Ok(removed.map_or(0, |c| {
            c.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .live_count(&mut now)
        }))
    }

    fn destroy_sync(&self) -> Result<()> {
        self.check_open(Operation::Destroy)?;
        write(&self.shared.collections).clear();
        Ok(())
    }

    fn cull_sync(&self) -> Result<u64> {
        self.check_open(Operation::Cull)?;
        let colls = read(&self.shared.collections);
        let mut now = None;
        Ok(colls.values().map(|c| write(c).sweep(&mut now)).sum())
    }

    fn close_sync(&self) -> Result<()> {
        if !self.shared.closed.swap(true, Ordering::Relaxed) {
            // Release the memory now rather than when the last handle is dropped.
            write(&self.shared.collections).clear();
        }
        Ok(())
    }
}

impl KvStore for MemoryStore {
    fn info(&self) -> &StoreInfo {
        &self.shared.info
    }

    // Every operation completes synchronously in a few hundred nanoseconds at most, so the
    // futures are `Ready`: no state machine, no allocation, no yield.
    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        ready(self.get_sync(collection, key))
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        ready(self.get_many_sync(collection, keys))
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.put_sync(collection, key, value, opts))
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.put_many_sync(collection, entries, opts))
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        ready(
            self.delete_many_sync(Operation::Delete, collection, &[key])
                .map(|n| n > 0),
        )
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        ready(self.delete_many_sync(Operation::DeleteMany, collection, keys))
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        ready(self.ttl_sync(collection, key))
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        ready(self.scan_sync(collection, opts))
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        ready(self.collections_sync())
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        ready(self.clear_sync(collection))
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        ready(self.destroy_sync())
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        ready(self.cull_sync())
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        ready(self.close_sync())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;
    use kv_core::KvStoreExt;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn filtered_scans_skip_non_matches_within_a_budget() {
        use kv_core::search::{Condition, Filter};
        block_on(async {
            let s = MemoryStore::new();
            for i in 0..25_000 {
                s.put_bytes(
                    "c",
                    &format!("k{i:05}"),
                    format!("{{\"i\":{i}}}").into_bytes(),
                )
                .await
                .unwrap();
            }
            let filter = Filter::new().and(Condition::ge("i", 24_990));
            let opts = ScanOptions::default().with_filter(filter.clone());
            // The first page examines SEARCH_BUDGET entries, finds nothing, and says where to go on.
            let page = s.scan_opts("c", opts.clone()).await.unwrap();
            assert!(page.items.is_empty());
            assert!(page.cursor.is_some());
            let found: Vec<_> = s.search("c", filter).try_collect().await.unwrap();
            assert_eq!(found.len(), 10);
            assert_eq!(found[0].key, "k24990");
            assert!(found[0].entry.is_some());
        })
    }

    #[test]
    fn lru_eviction_keeps_recently_read_entries() {
        block_on(async {
            let s = MemoryStore::builder().max_entries_per_collection(3).build();
            for k in ["a", "b", "c"] {
                s.put("c", k, &1).await.unwrap();
            }
            // Reading "a" makes "b" the least recently used.
            assert!(s.get::<i32>("c", "a").await.unwrap().is_some());
            s.put("c", "d", &1).await.unwrap();
            assert!(s.get::<i32>("c", "b").await.unwrap().is_none());
            for k in ["a", "c", "d"] {
                assert!(s.exists("c", k).await.unwrap(), "{k}");
            }
            // The bound is per collection.
            s.put("other", "x", &1).await.unwrap();
            assert_eq!(s.len("c").await.unwrap(), 3);
        });
    }

    /// The ordered index must hold exactly the map's keys after every kind of removal.
    fn assert_index_matches(s: &MemoryStore, collection: &str) {
        let colls = read(&s.shared.collections);
        let c = read(colls.get(collection).unwrap());
        let mut map_keys: Vec<&str> = c.map.keys().map(|k| &**k).collect();
        map_keys.sort_unstable();
        let index_keys: Vec<&str> = c.index.iter().flatten().map(|k| &**k).collect();
        assert_eq!(map_keys, index_keys);
    }

    #[test]
    fn scan_index_follows_evictions_deletes_and_sweeps() {
        block_on(async {
            let s = MemoryStore::builder()
                .max_entries_per_collection(50)
                .build();
            s.put("c", "first", &0).await.unwrap();
            // The first scan builds the index; from then on writes keep it up to date.
            let keys: Vec<String> = s.keys("c").try_collect().await.unwrap();
            assert_eq!(keys, ["first"]);
            for i in 0..80 {
                s.put("c", &format!("k{i:03}"), &i).await.unwrap();
            }
            assert_index_matches(&s, "c");
            s.delete("c", "k079").await.unwrap();
            assert_index_matches(&s, "c");
            for i in 0..10 {
                s.put_with_ttl("c", &format!("t{i}"), &i, Duration::from_millis(1))
                    .await
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
            s.cull().await.unwrap();
            assert_index_matches(&s, "c");
            let keys: Vec<String> = s.keys("c").try_collect().await.unwrap();
            assert_eq!(keys.len(), 40);
            assert_eq!(keys.first().map(String::as_str), Some("k039"));
        });
    }

    #[test]
    fn writes_sweep_expired_entries() {
        block_on(async {
            let s = MemoryStore::new();
            for i in 0..10 {
                s.put_with_ttl("c", &format!("k{i}"), &i, Duration::from_millis(1))
                    .await
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
            for i in 0..MIN_WRITES_BETWEEN_SWEEPS {
                s.put("c", &format!("p{}", i % 10), &i).await.unwrap();
            }
            let held = read(&s.shared.collections)
                .get("c")
                .map(|c| read(c).map.len())
                .unwrap();
            assert_eq!(held, 10, "expired entries must be swept by writes");
        });
    }

    #[test]
    fn seeded_entries_and_default_collection() {
        block_on(async {
            let s = MemoryStore::builder()
                .default_collection("main")
                .seed("", "k", Bytes::from_static(b"1"))
                .build();
            assert_eq!(s.get::<i32>("main", "k").await.unwrap(), Some(1));
            assert_eq!(s.get::<i32>("", "k").await.unwrap(), Some(1));
        });
    }

    #[test]
    fn close_rejects_later_operations() {
        block_on(async {
            let s = MemoryStore::new();
            s.put("c", "k", &1).await.unwrap();
            s.close().await.unwrap();
            s.close().await.unwrap();
            let e = s.get::<i32>("c", "k").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Closed);
        });
    }
}
