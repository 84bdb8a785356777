//! The store: one NATS connection, a JetStream KV bucket per collection.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_TTL};
use async_nats::jetstream::{self, kv, stream::StorageType};
use async_nats::{ConnectOptions, HeaderMap, HeaderValue};
use futures_util::TryStreamExt;
use futures_util::future::{join_all, try_join_all};
use kv_core::envelope::Meta;
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};

use crate::SCHEME;
use crate::config::NatsConfig;
use crate::format;

/// Room kept below the server's `max_payload` for the envelope and headers.
const PAYLOAD_OVERHEAD: usize = 4096;

/// A store on a NATS server with JetStream: one key-value bucket per collection.
///
/// Cheap to clone (a handle). Needs a Tokio runtime.
#[derive(Clone)]
pub struct NatsStore {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: NatsConfig,
    info: StoreInfo,
    client: async_nats::Client,
    js: jetstream::Context,
    /// The opened buckets, shared: a `kv::Store` holds its stream's whole configuration, too
    /// much to clone on every operation.
    buckets: Mutex<HashMap<String, Arc<kv::Store>>>,
    closed: AtomicBool,
    msg_ttl: bool,
    max_payload: usize,
}

impl std::fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStore")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// A write refused because the entry's revision was not the expected one.
struct Conflict;

fn server_supports_msg_ttl(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (2, 11)
}

/// A located entry: its bucket's collection name and NATS key.
struct Loc {
    nkey: String,
    hashed: bool,
}

impl NatsStore {
    /// Connects to the server of a `nats://` URL (see [`NatsConfig::from_url`]).
    pub fn connect(url: &str) -> impl Future<Output = Result<Self>> + Send + 'static {
        let cfg = NatsConfig::from_url(url);
        async move { Self::connect_with(cfg?).await }
    }

    /// Connects with an explicit configuration.
    pub async fn connect_with(cfg: NatsConfig) -> Result<Self> {
        cfg.validate()?;
        let mut opts = ConnectOptions::new()
            .connection_timeout(cfg.timeout)
            .request_timeout(Some(cfg.timeout))
            .reconnect_delay_callback(|n| Duration::from_millis((50 * n as u64).min(250)));
        if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        } else if let Some(t) = &cfg.token {
            opts = opts.token(t.clone());
        }
        let addrs: Vec<async_nats::ServerAddr> = cfg
            .servers
            .iter()
            .map(|s| {
                format!("nats://{s}").parse().map_err(|_| {
                    Error::new(
                        ErrorKind::Config,
                        format!("invalid NATS server address {s:?}"),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let ctx = |e: Error| e.with_context(SCHEME, Operation::Open, None, None);
        let client = match tokio::time::timeout(cfg.timeout, opts.connect(addrs)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let kind = if e.to_string().to_ascii_lowercase().contains("auth") {
                    ErrorKind::Config
                } else {
                    ErrorKind::Unavailable
                };
                return Err(ctx(Error::new(
                    kind,
                    format!("cannot connect to NATS at {}: {e}", cfg.servers.join(",")),
                )));
            }
            Err(_) => {
                return Err(ctx(Error::new(
                    ErrorKind::Timeout,
                    format!("connecting to NATS took longer than {:?}", cfg.timeout),
                )));
            }
        };
        let server = client.server_info();
        let msg_ttl = server_supports_msg_ttl(&server.version);
        let max_payload = if server.max_payload == 0 {
            1024 * 1024
        } else {
            server.max_payload
        };
        let cap = Capability {
            ttl: true,
            ttl_native: msg_ttl,
            batch_native: true,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: true,
            created_at: true,
            durable: true,
            shared: true,
            max_value_len: Some(max_payload.saturating_sub(PAYLOAD_OVERHEAD)),
            ..Capability::default()
        };
        let info = StoreInfo::new(SCHEME, cfg.redacted_url(), cap)
            .with_default_collection(cfg.default_collection.clone());
        let js = jetstream::new(client.clone());
        Ok(NatsStore {
            inner: Arc::new(Inner {
                cfg,
                info,
                client,
                js,
                buckets: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                msg_ttl,
                max_payload,
            }),
        })
    }

    /// Whether the server expires entries natively (per-message TTL, nats-server 2.11+).
    pub fn native_ttl(&self) -> bool {
        self.inner.msg_ttl
    }

    /// The bucket name of a collection.
    pub fn bucket_of(&self, collection: &str) -> String {
        format::bucket_name(
            &self.inner.cfg.namespace,
            self.inner.info.resolve(collection),
        )
    }

    /// Writes raw bytes as the value of an entry (tests use it to store corrupt data).
    #[doc(hidden)]
    pub async fn put_raw(&self, collection: &str, key: &str, raw: Bytes) -> Result<()> {
        self.run(Operation::Put, Some(collection), Some(key), async {
            let c = self.inner.info.resolve(collection);
            let b = self.bucket(c, true).await?.ok_or_else(gone)?;
            let (nkey, _) = format::encode_key(key);
            self.publish(&b, &nkey, raw, None, None, false)
                .await?
                .map_err(|_| gone())
                .map(drop)
        })
        .await
    }

    async fn run<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let r = if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::new(ErrorKind::Closed, "the NATS store is closed"))
        } else {
            match tokio::time::timeout(self.inner.cfg.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "NATS operation did not finish within {:?}",
                        self.inner.cfg.timeout
                    ),
                )),
            }
        };
        r.map_err(|e| e.with_context(SCHEME, op, collection, key))
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        let msg = format!("{what}: {e}");
        let lower = msg.to_ascii_lowercase();
        let down = self.inner.client.connection_state() != async_nats::connection::State::Connected;
        let kind = if lower.contains("timed out") || lower.contains("timeout") {
            ErrorKind::Timeout
        } else if down
            || lower.contains("broken pipe")
            || lower.contains("no responders")
            || lower.contains("disconnect")
            || lower.contains("connection")
            || lower.contains("jetstream not enabled")
        {
            ErrorKind::Unavailable
        } else if lower.contains("payload") {
            ErrorKind::ValueTooLarge
        } else {
            ErrorKind::Backend
        };
        Error::new(kind, msg)
    }

    fn cached(&self, collection: &str) -> Option<Arc<kv::Store>> {
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(collection)
            .cloned()
    }

    fn forget(&self, collection: &str) {
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(collection);
    }

    /// The bucket of a (resolved) collection; created when `create`, else `None` if missing.
    async fn bucket(&self, collection: &str, create: bool) -> Result<Option<Arc<kv::Store>>> {
        if let Some(b) = self.cached(collection) {
            return Ok(Some(b));
        }
        let name = format::bucket_name(&self.inner.cfg.namespace, collection);
        let mut attempts = 0;
        let store = loop {
            attempts += 1;
            match self.inner.js.get_key_value(&name).await {
                Ok(s) => break s,
                Err(e) if is_not_found(&e) => {
                    if !create {
                        return Ok(None);
                    }
                    let config = kv::Config {
                        bucket: name.clone(),
                        description: collection.to_owned(),
                        history: 1,
                        storage: StorageType::File,
                        num_replicas: self.inner.cfg.replicas,
                        limit_markers: self.inner.msg_ttl.then_some(Duration::from_secs(1)),
                        ..kv::Config::default()
                    };
                    match self.inner.js.create_key_value(config).await {
                        Ok(s) => break s,
                        // Created concurrently by someone else: read it again.
                        Err(_) if attempts < 3 => continue,
                        Err(e) => return Err(self.err("cannot create NATS bucket", e)),
                    }
                }
                Err(e) => return Err(self.err("cannot open NATS bucket", e)),
            }
        };
        let description = store.stream.cached_info().config.description.clone();
        if description.as_deref() != Some(collection) {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "NATS bucket {name} belongs to collection {description:?}, not this one \
                     (a bucket-name hash collision, or a bucket this store did not create)"
                ),
            ));
        }
        let store = Arc::new(store);
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(collection.to_owned(), Arc::clone(&store));
        Ok(Some(store))
    }

    /// Publishes one message to a bucket: a value, or a delete marker.
    async fn publish(
        &self,
        bucket: &kv::Store,
        nkey: &str,
        payload: Bytes,
        expected: Option<u64>,
        ttl: Option<Duration>,
        delete: bool,
    ) -> Result<std::result::Result<u64, Conflict>> {
        let ack = self
            .publish_start(bucket, nkey, payload, expected, ttl, delete)
            .await?;
        self.publish_finish(ack).await
    }

    async fn publish_start(
        &self,
        bucket: &kv::Store,
        nkey: &str,
        payload: Bytes,
        expected: Option<u64>,
        ttl: Option<Duration>,
        delete: bool,
    ) -> Result<jetstream::context::PublishAckFuture> {
        let subject = format!("{}{nkey}", bucket.prefix);
        let mut headers = HeaderMap::new();
        if let Some(r) = expected {
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, HeaderValue::from(r));
        }
        if let (Some(t), true) = (ttl, self.inner.msg_ttl) {
            headers.insert(NATS_MESSAGE_TTL, HeaderValue::from(native_ttl_secs(t)));
        }
        if delete {
            headers.insert("KV-Operation", "DEL");
        }
        self.inner
            .js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| self.err("NATS publish failed", e))
    }

    async fn publish_finish(
        &self,
        ack: jetstream::context::PublishAckFuture,
    ) -> Result<std::result::Result<u64, Conflict>> {
        match ack.await {
            Ok(a) => Ok(Ok(a.sequence)),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Ok(Err(Conflict))
            }
            Err(e) => Err(self.err("NATS publish failed", e)),
        }
    }

    /// The current message of a key (puts only), with its revision.
    async fn entry(&self, bucket: &kv::Store, nkey: &str) -> Result<Option<(Bytes, u64)>> {
        match bucket.entry(nkey).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put => Ok(Some((e.value, e.revision))),
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err("NATS read failed", e)),
        }
    }

    fn loc(key: &str) -> Loc {
        let (nkey, hashed) = format::encode_key(key);
        Loc { nkey, hashed }
    }

    async fn get_inner(
        &self,
        collection: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Entry>> {
        let c = self.inner.info.resolve(collection);
        let Some(b) = self.bucket(c, false).await? else {
            return Ok(None);
        };
        let l = Self::loc(key);
        let Some((raw, rev)) = self.entry(&b, &l.nkey).await? else {
            return Ok(None);
        };
        decode_entry(raw, &l, key, rev, now).map_err(|e| e.with_key(key))
    }

    async fn put_inner(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        ttl::check_supported(&self.inner.info.capability, opts.ttl)?;
        let now = Timestamp::now();
        let l = Self::loc(key);
        let meta = Meta {
            expires_at: ttl::expires_at(now, opts.ttl)?,
            created_at: Some(now),
            version: None,
        };
        let raw = format::encode(&meta, l.hashed.then_some(key), &value);
        self.check_size(value.len(), raw.len())?;
        let c = self.inner.info.resolve(collection);
        for attempt in 0..2 {
            let b = self.bucket(c, true).await?.ok_or_else(gone)?;
            let r = match &opts.mode {
                PutMode::IfAbsent => {
                    self.put_if_absent(&b, &l, key, raw.clone(), opts.ttl, now)
                        .await
                }
                PutMode::IfVersion(v) => {
                    let want = v.as_u64().ok_or_else(changed)?;
                    match self.entry(&b, &l.nkey).await? {
                        Some((old, rev)) if rev == want => {
                            if !matches!(decode_entry(old, &l, key, rev, now), Ok(Some(_))) {
                                return Err(changed());
                            }
                            match self
                                .publish(&b, &l.nkey, raw.clone(), Some(want), opts.ttl, false)
                                .await
                            {
                                Ok(Ok(_)) => Ok(()),
                                Ok(Err(Conflict)) => return Err(changed()),
                                Err(e) => Err(e),
                            }
                        }
                        _ => return Err(changed()),
                    }
                }
                _ => self
                    .publish(&b, &l.nkey, raw.clone(), None, opts.ttl, false)
                    .await
                    .map(drop),
            };
            match r {
                // The bucket was deleted behind this handle's back (another handle's
                // clear/destroy): forget it and create it again.
                Err(e) if attempt == 0 && stream_gone(&e) => {
                    self.forget(c);
                }
                other => return other,
            }
        }
        Err(gone())
    }

    async fn put_if_absent(
        &self,
        b: &kv::Store,
        l: &Loc,
        key: &str,
        raw: Bytes,
        ttl: Option<Duration>,
        now: Timestamp,
    ) -> Result<()> {
        for _ in 0..3 {
            if self
                .publish(b, &l.nkey, raw.clone(), Some(0), ttl, false)
                .await?
                .is_ok()
            {
                return Ok(());
            }
            // Something is there: a delete marker, an expired entry, or a live one.
            let last = match b.entry(&l.nkey).await {
                Ok(e) => e,
                Err(e) => return Err(self.err("NATS read failed", e)),
            };
            let Some(e) = last else { continue };
            if e.operation == kv::Operation::Put
                && !matches!(
                    decode_entry(e.value.clone(), l, key, e.revision, now),
                    Ok(None)
                )
            {
                return Err(exists());
            }
            return match self
                .publish(b, &l.nkey, raw, Some(e.revision), ttl, false)
                .await?
            {
                Ok(_) => Ok(()),
                Err(Conflict) => Err(exists()),
            };
        }
        Err(exists())
    }

    fn check_size(&self, value_len: usize, raw_len: usize) -> Result<()> {
        let max = self
            .inner
            .info
            .capability
            .max_value_len
            .unwrap_or(usize::MAX);
        if value_len > max || raw_len > self.inner.max_payload.saturating_sub(512) {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "value of {value_len} bytes exceeds this NATS store's limit of {max} bytes \
                     (the server's max_payload is {})",
                    self.inner.max_payload
                ),
            ));
        }
        Ok(())
    }

    async fn delete_inner(&self, collection: &str, key: &str) -> Result<bool> {
        let c = self.inner.info.resolve(collection);
        let Some(b) = self.bucket(c, false).await? else {
            return Ok(false);
        };
        let l = Self::loc(key);
        let now = Timestamp::now();
        for _ in 0..3 {
            let Some((raw, rev)) = self.entry(&b, &l.nkey).await? else {
                return Ok(false);
            };
            let live = match decode_entry(raw.clone(), &l, key, rev, now) {
                Ok(Some(_)) => true,
                Err(_) => true, // corrupt bytes: the entry exists; deleting needs no decoding
                Ok(None) => {
                    if l.hashed
                        && !matches!(format::decode(raw, true), Ok((_, Some(k), _)) if k == key)
                    {
                        return Ok(false); // another key's entry: leave it
                    }
                    false
                }
            };
            match self
                .publish(&b, &l.nkey, Bytes::new(), Some(rev), None, true)
                .await?
            {
                Ok(_) => return Ok(live),
                Err(Conflict) => continue, // written in between: look again
            }
        }
        Err(Error::new(
            ErrorKind::ConditionFailed,
            "the entry kept changing while it was being deleted",
        ))
    }

    /// Every (kv key, NATS key) of a bucket, sorted by kv key, with `prefix` and after `after`.
    async fn list_keys(
        &self,
        b: &kv::Store,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        let keys: Vec<String> = match b.keys().await {
            Ok(k) => k
                .try_collect()
                .await
                .map_err(|e| self.err("NATS key listing failed", e))?,
            Err(e) => return Err(self.err("NATS key listing failed", e)),
        };
        let mut out = Vec::with_capacity(keys.len());
        for nkey in keys {
            let key = if format::is_hashed(&nkey) {
                match self.entry(b, &nkey).await? {
                    Some((raw, _)) => match format::decode(raw, true) {
                        Ok((_, Some(k), _)) => k,
                        _ => continue,
                    },
                    None => continue,
                }
            } else {
                match format::decode_key(&nkey) {
                    Some(k) => k,
                    None => continue, // not written by this store
                }
            };
            if key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
                out.push((key, nkey));
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    async fn scan_inner(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let after = scan::key_after(&opts)?;
        let c = self.inner.info.resolve(collection);
        let Some(b) = self.bucket(c, false).await? else {
            return Ok(ScanPage::default());
        };
        let candidates = self.list_keys(&b, &opts.prefix, after).await?;
        let now = Timestamp::now();
        let limit = opts.page_size.max(1);
        let mut items = Vec::new();
        let mut pos = 0;
        while pos < candidates.len() && items.len() < limit {
            let n = (limit - items.len()).clamp(16, 256);
            let chunk = &candidates[pos..(pos + n).min(candidates.len())];
            let fetched = try_join_all(chunk.iter().map(|(k, nk)| {
                let b = &b;
                async move {
                    let l = Loc {
                        nkey: nk.clone(),
                        hashed: format::is_hashed(nk),
                    };
                    match self.entry(b, nk).await? {
                        None => Ok(None),
                        Some((raw, rev)) => {
                            decode_entry(raw, &l, k, rev, now).map_err(|e| e.with_key(k))
                        }
                    }
                }
            }))
            .await?;
            for ((k, _), entry) in chunk.iter().zip(fetched) {
                pos += 1;
                if let Some(e) = entry {
                    items.push(ScanItem::new(k.clone(), (!opts.keys_only).then_some(e)));
                    if items.len() == limit {
                        break;
                    }
                }
            }
        }
        let cursor = (pos < candidates.len())
            .then(|| items.last().map(|i| scan::cursor_after(&i.key)))
            .flatten();
        Ok(ScanPage::new(items, cursor))
    }

    /// `(stream name, collection)` of every bucket of this store.
    async fn own_buckets(&self) -> Result<Vec<(String, String)>> {
        let prefix = format!("KV_{}_", self.inner.cfg.namespace);
        let infos: Vec<_> = self
            .inner
            .js
            .streams()
            .try_collect()
            .await
            .map_err(|e| self.err("NATS stream listing failed", e))?;
        Ok(infos
            .into_iter()
            .filter(|i| i.config.name.starts_with(&prefix))
            .filter_map(|i| Some((i.config.name.clone(), i.config.description.clone()?)))
            .collect())
    }

    async fn count_live(&self, b: &kv::Store) -> Result<u64> {
        let mut n = 0;
        let mut opts = ScanOptions::default().keys_only().with_page_size(1000);
        loop {
            let page = self.scan_with_bucket(b, opts.clone()).await?;
            n += page.items.len() as u64;
            match page.cursor {
                Some(c) => opts = opts.with_cursor(Some(c)),
                None => return Ok(n),
            }
        }
    }

    async fn scan_with_bucket(&self, b: &kv::Store, opts: ScanOptions) -> Result<ScanPage> {
        // The description is the collection name (checked when the bucket was opened).
        let c = b
            .stream
            .cached_info()
            .config
            .description
            .clone()
            .unwrap_or_default();
        self.scan_inner(&c, opts).await
    }

    async fn cull_inner(&self) -> Result<u64> {
        let now = Timestamp::now();
        let mut n = 0;
        for (_, collection) in self.own_buckets().await? {
            let Some(b) = self.bucket(&collection, false).await? else {
                continue;
            };
            for (_, nkey) in self.list_keys(&b, "", None).await? {
                let hashed = format::is_hashed(&nkey);
                let Some((raw, rev)) = self.entry(&b, &nkey).await? else {
                    continue;
                };
                let expired =
                    format::decode(raw, hashed).is_ok_and(|(m, _, _)| m.is_expired_at(now));
                if expired
                    && self
                        .publish(&b, &nkey, Bytes::new(), Some(rev), None, true)
                        .await?
                        .is_ok()
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

fn native_ttl_secs(t: Duration) -> u64 {
    // Whole seconds, rounded up, plus one: the server's expiry must never come before the
    // exact one in the envelope.
    t.as_secs()
        .saturating_add(u64::from(t.subsec_nanos() > 0))
        .saturating_add(1)
}

fn is_not_found(e: &dyn std::fmt::Display) -> bool {
    let s = e.to_string().to_ascii_lowercase();
    s.contains("not found") || s.contains("10059")
}

fn stream_gone(e: &Error) -> bool {
    let s = e.message().to_ascii_lowercase();
    s.contains("no stream") || s.contains("stream not found") || s.contains("no responders")
}

fn gone() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the NATS bucket disappeared while in use",
    )
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

/// Decodes a value into a live entry; `Ok(None)` if it expired or belongs to another key.
fn decode_entry(raw: Bytes, l: &Loc, key: &str, rev: u64, now: Timestamp) -> Result<Option<Entry>> {
    let (meta, stored_key, value) = format::decode(raw, l.hashed)?;
    if l.hashed && stored_key.as_deref() != Some(key) {
        return Ok(None);
    }
    if meta.is_expired_at(now) {
        return Ok(None);
    }
    Ok(Some(
        meta.into_entry(value)
            .with_version(Some(Version::from_u64(rev))),
    ))
}

impl KvStore for NatsStore {
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
            self.get_inner(collection, key, Timestamp::now()),
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
            // Pipelined on the one connection: all requests go out before any answer is read.
            try_join_all(keys.iter().map(|k| self.get_inner(collection, k, now))).await
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
            let now = Timestamp::now();
            let meta = Meta {
                expires_at: ttl::expires_at(now, opts.ttl)?,
                created_at: Some(now),
                version: None,
            };
            let mut msgs = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let l = Self::loc(k);
                let raw = format::encode(&meta, l.hashed.then_some(*k), v);
                self.check_size(v.len(), raw.len())
                    .map_err(|e| e.with_key(k))?;
                msgs.push((l.nkey, raw));
            }
            let c = self.inner.info.resolve(collection);
            let b = self.bucket(c, true).await?.ok_or_else(gone)?;
            // Publish everything, then wait for the acknowledgements (one round trip).
            let mut acks = Vec::with_capacity(msgs.len());
            for (nkey, raw) in msgs {
                acks.push(
                    self.publish_start(&b, &nkey, raw, None, opts.ttl, false)
                        .await?,
                );
            }
            for r in join_all(acks.into_iter().map(|a| self.publish_finish(a))).await {
                if r?.is_err() {
                    return Err(Error::new(ErrorKind::Backend, "NATS refused a write"));
                }
            }
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
            let mut distinct: Vec<&str> = keys.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let done =
                try_join_all(distinct.iter().map(|k| self.delete_inner(collection, k))).await?;
            Ok(done.into_iter().filter(|d| *d).count() as u64)
        })
    }

    fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _: GetOptions,
    ) -> impl Future<Output = Result<Option<Ttl>>> + Send {
        self.run(Operation::Ttl, Some(collection), Some(key), async move {
            let now = Timestamp::now();
            Ok(self
                .get_inner(collection, key, now)
                .await?
                .map(|e| e.ttl_at(now)))
        })
    }

    fn scan_opts(
        &self,
        collection: &str,
        opts: ScanOptions,
    ) -> impl Future<Output = Result<ScanPage>> + Send {
        self.run(
            Operation::Scan,
            Some(collection),
            None,
            self.scan_inner(collection, opts),
        )
    }

    fn collections_opts(
        &self,
        _: CollectionsOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.run(Operation::Collections, None, None, async move {
            let mut names: Vec<String> = self
                .own_buckets()
                .await?
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            names.sort_unstable();
            names.dedup();
            Ok(names)
        })
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::Clear, Some(collection), None, async move {
            let c = self.inner.info.resolve(collection);
            let Some(b) = self.bucket(c, false).await? else {
                return Ok(0);
            };
            let n = self.count_live(&b).await?;
            b.stream
                .purge()
                .await
                .map_err(|e| self.err("NATS purge failed", e))?;
            Ok(n)
        })
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.run(Operation::Destroy, None, None, async move {
            for (stream, _) in self.own_buckets().await? {
                match self.inner.js.delete_stream(&stream).await {
                    Err(e) if !is_not_found(&e) => {
                        return Err(self.err("NATS bucket deletion failed", e));
                    }
                    _ => {}
                }
            }
            self.inner
                .buckets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            Ok(())
        })
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::Cull, None, None, self.cull_inner())
    }

    #[allow(clippy::manual_async_fn)]
    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        async move {
            if !self.inner.closed.swap(true, Ordering::AcqRel) {
                let _ =
                    tokio::time::timeout(self.inner.cfg.timeout, self.inner.client.flush()).await;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_with_message_ttl() {
        assert!(server_supports_msg_ttl("2.11.0"));
        assert!(server_supports_msg_ttl("2.15.1"));
        assert!(!server_supports_msg_ttl("2.9.10"));
        assert!(!server_supports_msg_ttl("garbage"));
        assert_eq!(native_ttl_secs(Duration::from_millis(300)), 2);
        assert_eq!(native_ttl_secs(Duration::from_secs(5)), 6);
    }
}
