//! The store: a connection pool per server, a consistent-hash ring, and the `KvStore` impl.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_memcached::{AsciiProtocol, Client, MetaProtocol, Status};
use futures_util::future::try_join_all;
use kv_core::envelope::Meta;
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl, Version, ttl,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::SCHEME;
use crate::config::MemcachedConfig;
use crate::format;
use crate::ring::Ring;

type McError = async_memcached::Error;

/// A store on one or more memcached servers.
///
/// Cheap to clone (a handle); every clone shares the connection pools. Needs a Tokio runtime.
#[derive(Clone)]
pub struct MemcachedStore {
    inner: Arc<Inner>,
}

struct Server {
    addr: String,
    conns: Vec<Arc<Mutex<Option<Client>>>>,
    next: AtomicUsize,
}

struct Inner {
    cfg: MemcachedConfig,
    info: StoreInfo,
    ring: Ring,
    servers: Vec<Server>,
    closed: AtomicBool,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// What a conditional `ms` answered.
#[derive(Debug, PartialEq, Eq)]
enum SetOutcome {
    Stored,
    NotStored,
}

fn mc_err(addr: &str, e: McError) -> Error {
    match e {
        McError::Connect(io) => Error::new(
            ErrorKind::Unavailable,
            format!("cannot connect to memcached server {addr}: {io}"),
        ),
        McError::Io(io) => Error::new(
            ErrorKind::Unavailable,
            format!("connection to memcached server {addr} failed: {io}"),
        ),
        McError::ConnectionClosed => Error::new(
            ErrorKind::Unavailable,
            format!("connection to memcached server {addr} was closed"),
        ),
        McError::Protocol(s) => {
            let msg = format!("memcached server {addr} answered {s:?}");
            let lower = msg.to_ascii_lowercase();
            if lower.contains("too large") {
                Error::new(ErrorKind::ValueTooLarge, msg)
            } else if lower.contains("out of memory") {
                Error::new(ErrorKind::Unavailable, msg)
            } else {
                Error::new(ErrorKind::Backend, msg)
            }
        }
        McError::ParseError(k) => Error::new(
            ErrorKind::Backend,
            format!("unparsable answer from memcached server {addr}: {k:?}"),
        ),
    }
}

struct Conn {
    guard: OwnedMutexGuard<Option<Client>>,
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client> {
        self.guard
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "no memcached connection"))
    }
}

impl MemcachedStore {
    /// Connects to the servers of a `memcached://` URL (see [`MemcachedConfig::from_url`]) and
    /// checks that each one answers.
    pub fn connect(url: &str) -> impl Future<Output = Result<Self>> + Send + 'static {
        let cfg = MemcachedConfig::from_url(url);
        async move { Self::connect_with(cfg?).await }
    }

    /// Connects with an explicit configuration.
    pub async fn connect_with(cfg: MemcachedConfig) -> Result<Self> {
        cfg.validate()?;
        let cap = Capability {
            ttl: true,
            ttl_native: true,
            batch_native: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            shared: true,
            max_value_len: Some(cfg.max_value_len),
            ..Capability::default()
        };
        let info = StoreInfo::new(SCHEME, cfg.to_url(), cap)
            .with_default_collection(cfg.default_collection.clone());
        let servers = cfg
            .servers
            .iter()
            .map(|addr| Server {
                addr: addr.clone(),
                conns: (0..cfg.pool_size)
                    .map(|_| Arc::new(Mutex::new(None)))
                    .collect(),
                next: AtomicUsize::new(0),
            })
            .collect();
        let store = MemcachedStore {
            inner: Arc::new(Inner {
                ring: Ring::new(&cfg.servers),
                cfg,
                info,
                servers,
                closed: AtomicBool::new(false),
            }),
        };
        let ping = async {
            for i in 0..store.inner.servers.len() {
                let mut c = store.conn(i).await?;
                let addr = &store.inner.servers[i].addr;
                c.client()?.version().await.map_err(|e| mc_err(addr, e))?;
            }
            Ok(())
        };
        store.run(Operation::Open, None, None, ping).await?;
        Ok(store)
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &MemcachedConfig {
        &self.inner.cfg
    }

    /// The server (`host:port`) that holds an entry, by the consistent-hash ring.
    pub fn server_of(&self, collection: &str, key: &str) -> &str {
        let c = self.inner.info.resolve(collection);
        let (ik, _) = format::item_key(&self.inner.cfg.prefix, c, key);
        &self.inner.servers[self.inner.ring.server_for(ik.as_bytes())].addr
    }

    /// Writes raw bytes as the item of an entry (tests use it to store corrupt data).
    #[doc(hidden)]
    pub async fn put_raw(&self, collection: &str, key: &str, raw: Bytes) -> Result<()> {
        let c = self.inner.info.resolve(collection);
        let (ik, _) = format::item_key(&self.inner.cfg.prefix, c, key);
        let srv = self.inner.ring.server_for(ik.as_bytes());
        self.run(Operation::Put, Some(collection), Some(key), async {
            self.ms(srv, &ik, &raw, &[]).await.map(drop)
        })
        .await
    }

    async fn conn(&self, server: usize) -> Result<Conn> {
        let s = &self.inner.servers[server];
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.conns.len();
        let mut guard = s.conns[i].clone().lock_owned().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            let client = Client::new(format!("tcp://{}", s.addr))
                .await
                .map_err(|e| mc_err(&s.addr, e))?;
            *guard = Some(client);
        }
        Ok(Conn { guard })
    }

    async fn run<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let r = if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::new(
                ErrorKind::Closed,
                "the memcached store is closed",
            ))
        } else {
            match tokio::time::timeout(self.inner.cfg.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "memcached operation did not finish within {:?}",
                        self.inner.cfg.timeout
                    ),
                )),
            }
        };
        r.map_err(|e| e.with_context(SCHEME, op, collection, key))
    }

    fn locate<'a>(&'a self, collection: &'a str, key: &'a str) -> Located<'a> {
        let c = self.inner.info.resolve(collection);
        let (ik, hashed) = format::item_key(&self.inner.cfg.prefix, c, key);
        let server = self.inner.ring.server_for(ik.as_bytes());
        Located {
            ik,
            key,
            server,
            id: hashed.then_some((c, key)),
        }
    }

    async fn mg(&self, server: usize, ik: &str) -> Result<Option<(Bytes, u64)>> {
        let mut c = self.conn(server).await?;
        let addr = &self.inner.servers[server].addr;
        let r = c
            .client()?
            .meta_get(ik, false, None, Some(&["v", "c"]))
            .await
            .map_err(|e| mc_err(addr, e))?;
        Ok(r.map(|m| (Bytes::from(m.data.unwrap_or_default()), m.cas.unwrap_or(0))))
    }

    async fn ms(&self, server: usize, ik: &str, raw: &[u8], flags: &[&str]) -> Result<SetOutcome> {
        let mut c = self.conn(server).await?;
        let addr = &self.inner.servers[server].addr;
        let flags = (!flags.is_empty()).then_some(flags);
        match c.client()?.meta_set(ik, raw, false, None, flags).await {
            Ok(_) => Ok(SetOutcome::Stored),
            Err(McError::Protocol(Status::NotStored | Status::Exists | Status::NotFound)) => {
                Ok(SetOutcome::NotStored)
            }
            Err(e) => Err(mc_err(addr, e)),
        }
    }

    async fn md(&self, server: usize, ik: &str) -> Result<bool> {
        let mut c = self.conn(server).await?;
        let addr = &self.inner.servers[server].addr;
        match c.client()?.meta_delete(ik, false, None, None).await {
            Ok(_) => Ok(true),
            Err(McError::Protocol(Status::NotFound)) => Ok(false),
            Err(e) => Err(mc_err(addr, e)),
        }
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        let max = self.inner.cfg.max_value_len;
        if value.len() > max {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "value of {} bytes exceeds this memcached store's limit of {max} bytes",
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    async fn get_inner(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        let l = self.locate(collection, key);
        match self.mg(l.server, &l.ik).await? {
            None => Ok(None),
            Some((raw, cas)) => decode_entry(raw, l.id, cas, Timestamp::now()),
        }
    }

    async fn put_inner(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        ttl::check_supported(&self.inner.info.capability, opts.ttl)?;
        self.check_value(&value)?;
        let now = Timestamp::now();
        let meta = Meta {
            expires_at: ttl::expires_at(now, opts.ttl)?,
            created_at: Some(now),
            version: None,
        };
        let l = self.locate(collection, key);
        let raw = format::encode(&meta, l.id, &value);
        let t = format!("T{}", format::exptime(now, opts.ttl));
        match opts.mode {
            PutMode::IfAbsent => {
                for _ in 0..3 {
                    if self.ms(l.server, &l.ik, &raw, &[&t, "ME"]).await? == SetOutcome::Stored {
                        return Ok(());
                    }
                    // Something is there: it may be an entry that expired by its exact
                    // expiry but not yet by memcached's (whole-second) one.
                    let Some((old, cas)) = self.mg(l.server, &l.ik).await? else {
                        continue; // removed in between: try to add again
                    };
                    let live = !matches!(decode_entry(old, l.id, cas, now), Ok(None));
                    if live {
                        return Err(exists());
                    }
                    let c = format!("C{cas}");
                    return match self.ms(l.server, &l.ik, &raw, &[&t, &c]).await? {
                        SetOutcome::Stored => Ok(()),
                        SetOutcome::NotStored => Err(exists()),
                    };
                }
                Err(exists())
            }
            PutMode::IfVersion(v) => {
                let want = v.as_u64().ok_or_else(changed)?;
                let Some((old, cas)) = self.mg(l.server, &l.ik).await? else {
                    return Err(changed());
                };
                if cas != want || !matches!(decode_entry(old, l.id, cas, now), Ok(Some(_))) {
                    return Err(changed());
                }
                let c = format!("C{want}");
                match self.ms(l.server, &l.ik, &raw, &[&t, &c]).await? {
                    SetOutcome::Stored => Ok(()),
                    SetOutcome::NotStored => Err(changed()),
                }
            }
            _ => match self.ms(l.server, &l.ik, &raw, &[&t]).await? {
                SetOutcome::Stored => Ok(()),
                SetOutcome::NotStored => Err(Error::new(
                    ErrorKind::Backend,
                    "memcached did not store the item",
                )),
            },
        }
    }

    async fn delete_inner(&self, collection: &str, key: &str) -> Result<bool> {
        let l = self.locate(collection, key);
        let Some((raw, cas)) = self.mg(l.server, &l.ik).await? else {
            return Ok(false);
        };
        let live = match decode_entry(raw, l.id, cas, Timestamp::now()) {
            Ok(Some(_)) => true,
            Err(_) => true, // corrupt bytes: the entry exists, deleting needs no decoding
            Ok(None) => {
                if l.id.is_some() && !self.is_ours(l.server, &l.ik, l.id).await? {
                    return Ok(false); // another entry's item (hash collision): leave it
                }
                false
            }
        };
        let deleted = self.md(l.server, &l.ik).await?;
        Ok(live && deleted)
    }

    /// Whether a hashed item belongs to `id` (expired or not).
    async fn is_ours(&self, server: usize, ik: &str, id: Option<(&str, &str)>) -> Result<bool> {
        Ok(match self.mg(server, ik).await? {
            None => false,
            Some((raw, _)) => !matches!(format::decode(raw, id), Ok(None)),
        })
    }

    /// Hits of one server for many item keys: item key → (raw, cas).
    async fn mg_multi(
        &self,
        server: usize,
        iks: Vec<&str>,
    ) -> Result<HashMap<Vec<u8>, (Bytes, u64)>> {
        let mut c = self.conn(server).await?;
        let addr = &self.inner.servers[server].addr;
        let hits = c
            .client()?
            .meta_get_multi(&iks, Some(&["v", "c"]))
            .await
            .map_err(|e| mc_err(addr, e))?;
        Ok(hits
            .into_iter()
            .filter_map(|m| {
                let k = m.key?;
                Some((
                    k,
                    (Bytes::from(m.data.unwrap_or_default()), m.cas.unwrap_or(0)),
                ))
            })
            .collect())
    }

    /// Looks up many keys of one collection: for each key its location and hit.
    async fn lookup_many<'a>(
        &'a self,
        collection: &'a str,
        keys: &[&'a str],
    ) -> Result<Vec<(Located<'a>, Option<(Bytes, u64)>)>> {
        let located: Vec<Located<'a>> = keys.iter().map(|k| self.locate(collection, k)).collect();
        let mut by_server: HashMap<usize, Vec<&str>> = HashMap::new();
        // A key asked twice is fetched once (a set, not a scan of the list: batches are large).
        let mut seen = HashSet::with_capacity(located.len());
        for l in &located {
            if seen.insert(l.ik.as_str()) {
                by_server.entry(l.server).or_default().push(&l.ik);
            }
        }
        let results = try_join_all(
            by_server
                .into_iter()
                .map(|(srv, iks)| async move { self.mg_multi(srv, iks).await.map(|m| (srv, m)) }),
        )
        .await?;
        let mut hits: HashMap<usize, HashMap<Vec<u8>, (Bytes, u64)>> =
            results.into_iter().collect();
        Ok(located
            .into_iter()
            .map(|l| {
                let hit = hits
                    .get_mut(&l.server)
                    .and_then(|m| m.get(l.ik.as_bytes()).cloned());
                (l, hit)
            })
            .collect())
    }
}

struct Located<'a> {
    ik: String,
    key: &'a str,
    server: usize,
    /// `Some((collection, key))` when the item key is the hashed form.
    id: Option<(&'a str, &'a str)>,
}

fn exists() -> Error {
    Error::new(ErrorKind::ConditionFailed, "the entry already exists")
}

fn changed() -> Error {
    Error::new(
        ErrorKind::ConditionFailed,
        "the entry does not exist or has another version",
    )
}

/// Decodes an item into a live entry; `Ok(None)` if it expired or belongs to another key.
fn decode_entry(
    raw: Bytes,
    id: Option<(&str, &str)>,
    cas: u64,
    now: Timestamp,
) -> Result<Option<Entry>> {
    let Some((meta, value)) = format::decode(raw, id)? else {
        return Ok(None);
    };
    if meta.is_expired_at(now) {
        return Ok(None);
    }
    Ok(Some(
        meta.into_entry(value)
            .with_version(Some(Version::from_u64(cas))),
    ))
}

fn unsupported(op: Operation, what: &str) -> Error {
    Error::unsupported(SCHEME, op, what)
}

impl KvStore for MemcachedStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Entry>>> + Send {
        self.run(
            Operation::Get,
            Some(collection),
            Some(key),
            self.get_inner(collection, key),
        )
    }

    fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: GetOptions,
    ) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        self.run(Operation::GetMany, Some(collection), None, async move {
            let now = Timestamp::now();
            let found = self.lookup_many(collection, keys).await?;
            let mut out = Vec::with_capacity(found.len());
            for (l, hit) in found {
                out.push(match hit {
                    None => None,
                    Some((raw, cas)) => {
                        decode_entry(raw, l.id, cas, now).map_err(|e| e.with_key(l.key))?
                    }
                });
            }
            Ok(out)
        })
    }

    fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        self.run(
            Operation::Put,
            Some(collection),
            Some(key),
            self.put_inner(collection, key, value, opts),
        )
    }

    fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        self.run(Operation::PutMany, Some(collection), None, async move {
            ttl::check_supported(&self.inner.info.capability, opts.ttl)?;
            for (k, v) in entries {
                self.check_value(v).map_err(|e| e.with_key(k))?;
            }
            let now = Timestamp::now();
            let meta = Meta {
                expires_at: ttl::expires_at(now, opts.ttl)?,
                created_at: Some(now),
                version: None,
            };
            let t = format!("T{}", format::exptime(now, opts.ttl));
            let mut by_server: HashMap<usize, Vec<(String, Vec<u8>)>> = HashMap::new();
            for (k, v) in entries {
                let l = self.locate(collection, k);
                let raw = format::encode(&meta, l.id, v);
                by_server.entry(l.server).or_default().push((l.ik, raw));
            }
            let t = &t;
            try_join_all(by_server.into_iter().map(|(srv, items)| async move {
                let items: Vec<(&str, &[u8])> = items
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                let mut c = self.conn(srv).await?;
                let addr = &self.inner.servers[srv].addr;
                let refused = c
                    .client()?
                    .meta_set_multi(&items, Some(&[t.as_str()]))
                    .await
                    .map_err(|e| mc_err(addr, e))?;
                if refused.is_empty() {
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorKind::Backend,
                        format!(
                            "memcached server {addr} refused {} of {} items",
                            refused.len(),
                            items.len()
                        ),
                    ))
                }
            }))
            .await?;
            Ok(())
        })
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        self.run(
            Operation::Delete,
            Some(collection),
            Some(key),
            self.delete_inner(collection, key),
        )
    }

    fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _: DeleteOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::DeleteMany, Some(collection), None, async move {
            let now = Timestamp::now();
            let found = self.lookup_many(collection, keys).await?;
            let mut live = 0u64;
            let mut seen = std::collections::HashSet::new();
            let mut to_delete: HashMap<usize, Vec<String>> = HashMap::new();
            for (l, hit) in found {
                let Some((raw, cas)) = hit else { continue };
                if !seen.insert(l.ik.clone()) {
                    continue;
                }
                let ours = !matches!(format::decode(raw.clone(), l.id), Ok(None));
                if !ours {
                    continue;
                }
                if !matches!(decode_entry(raw, l.id, cas, now), Ok(None)) {
                    live += 1;
                }
                to_delete.entry(l.server).or_default().push(l.ik);
            }
            try_join_all(to_delete.into_iter().map(|(srv, iks)| async move {
                let mut c = self.conn(srv).await?;
                let addr = &self.inner.servers[srv].addr;
                c.client()?
                    .delete_multi_no_reply(&iks)
                    .await
                    .map_err(|e| mc_err(addr, e))?;
                // A no-reply pipeline: one answered command makes sure the deletes were read.
                c.client()?.version().await.map_err(|e| mc_err(addr, e))?;
                Ok::<_, Error>(())
            }))
            .await?;
            Ok(live)
        })
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        self.run(Operation::Ttl, Some(collection), Some(key), async move {
            Ok(self
                .get_inner(collection, key)
                .await?
                .map(|e| e.ttl_at(Timestamp::now())))
        })
    }

    fn scan_opts(
        &self,
        collection: &str,
        _: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        let e = unsupported(Operation::Scan, "scans (memcached cannot list its keys)")
            .with_collection(collection);
        std::future::ready(self.closed_or(e))
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let e = unsupported(
            Operation::Collections,
            "listing collections (memcached cannot list its keys)",
        );
        std::future::ready(self.closed_or(e))
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        let e = unsupported(
            Operation::Clear,
            "clearing a collection (memcached cannot list its keys)",
        )
        .with_collection(collection);
        std::future::ready(self.closed_or(e))
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        let e = unsupported(
            Operation::Destroy,
            "destroy (memcached cannot list its keys, and flush_all would wipe entries this store does not own)",
        );
        std::future::ready(self.closed_or(e))
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        // memcached drops expired items itself.
        let r = if self.inner.closed.load(Ordering::Acquire) {
            Err(closed_err(Operation::Cull))
        } else {
            Ok(0)
        };
        std::future::ready(r)
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        self.inner.closed.store(true, Ordering::Release);
        for s in &self.inner.servers {
            for c in &s.conns {
                if let Ok(mut g) = c.try_lock() {
                    *g = None;
                }
            }
        }
        std::future::ready(Ok(()))
    }
}

fn closed_err(op: Operation) -> Error {
    Error::new(ErrorKind::Closed, "the memcached store is closed")
        .with_context(SCHEME, op, None, None)
}

impl MemcachedStore {
    fn closed_or<T>(&self, e: Error) -> Result<T> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(closed_err(e.operation().unwrap_or(Operation::Get)))
        } else {
            Err(e)
        }
    }
}
