//! The store: an etcd client and the `KvStore` impl.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions as EDelete, GetOptions as EGet,
    KeyValue, PutOptions as EPut, Txn, TxnOp, TxnOpResponse,
};
use kv_core::envelope::{self, Meta};
use kv_core::{
    Bytes, Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions,
    DestroyOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
    Version, scan, ttl,
};

use crate::SCHEME;
use crate::config::EtcdConfig;
use crate::format;

/// etcd's default limit of operations in one transaction (`--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;

/// A store on an etcd cluster (v3 API).
///
/// Cheap to clone (a handle). Needs a Tokio runtime.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: EtcdConfig,
    info: StoreInfo,
    client: Client,
    closed: AtomicBool,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

fn etcd_err(e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => {
            let msg = format!("etcd: {}", s.message());
            // gRPC codes: 4 deadline exceeded; 1 cancelled, 2 unknown, 8 resource exhausted,
            // 10 aborted, 14 unavailable (leader changes, lost members).
            let code: i32 = s.code().into();
            let kind = match code {
                4 => ErrorKind::Timeout,
                1 | 2 | 8 | 10 | 14 => ErrorKind::Unavailable,
                _ if msg.contains("too large") => ErrorKind::ValueTooLarge,
                _ => ErrorKind::Backend,
            };
            Error::new(kind, msg)
        }
        E::TransportError(t) => Error::new(ErrorKind::Unavailable, format!("etcd transport: {t}")),
        E::IoError(io) => Error::new(ErrorKind::Unavailable, format!("etcd I/O: {io}")),
        other => Error::new(ErrorKind::Backend, format!("etcd: {other}")),
    }
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

/// Decodes a stored value into a live entry; `Ok(None)` if it has expired.
fn decode_entry(kv: &KeyValue, now: Timestamp) -> Result<Option<Entry>> {
    let (meta, value) = envelope::decode(Bytes::copy_from_slice(kv.value()))?;
    if meta.is_expired_at(now) {
        return Ok(None);
    }
    Ok(Some(meta.into_entry(value).with_version(Some(
        Version::from_u64(kv.mod_revision() as u64),
    ))))
}

fn lease_secs(t: Duration) -> i64 {
    // Whole seconds rounded up, plus one for lease-expiry jitter: a lease never ends before
    // the exact expiry kept in the envelope.
    let s = t
        .as_secs()
        .saturating_add(u64::from(t.subsec_nanos() > 0))
        .saturating_add(1);
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl EtcdStore {
    /// Connects to the members of an `etcd://` URL (see [`EtcdConfig::from_url`]).
    pub fn connect(url: &str) -> impl Future<Output = Result<Self>> + Send + 'static {
        let cfg = EtcdConfig::from_url(url);
        async move { Self::connect_with(cfg?).await }
    }

    /// Connects with an explicit configuration.
    pub async fn connect_with(cfg: EtcdConfig) -> Result<Self> {
        cfg.validate()?;
        let mut opts = ConnectOptions::new()
            .with_timeout(cfg.timeout)
            .with_connect_timeout(cfg.timeout)
            .with_keep_alive(Duration::from_secs(5), cfg.timeout);
        if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
            opts = opts.with_user(u.clone(), p.clone());
        }
        let endpoints: Vec<String> = cfg
            .endpoints
            .iter()
            .map(|e| format!("http://{e}"))
            .collect();
        let ctx = |e: Error| e.with_context(SCHEME, Operation::Open, None, None);
        let connect = async {
            let mut client = Client::connect(endpoints, Some(opts))
                .await
                .map_err(etcd_err)?;
            // One read so that an unreachable cluster fails here, not on first use.
            client
                .get(
                    format::collection_prefix(&cfg.prefix, ""),
                    Some(EGet::new().with_count_only()),
                )
                .await
                .map_err(etcd_err)?;
            Ok::<_, Error>(client)
        };
        let client = match tokio::time::timeout(cfg.timeout, connect).await {
            Ok(r) => r.map_err(ctx)?,
            Err(_) => {
                return Err(ctx(Error::new(
                    ErrorKind::Timeout,
                    format!("connecting to etcd took longer than {:?}", cfg.timeout),
                )));
            }
        };
        let cap = Capability {
            ttl: true,
            ttl_native: true,
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
            max_value_len: Some(cfg.max_value_len),
            ..Capability::default()
        };
        let info = StoreInfo::new(SCHEME, cfg.redacted_url(), cap)
            .with_default_collection(cfg.default_collection.clone());
        Ok(EtcdStore {
            inner: Arc::new(Inner {
                cfg,
                info,
                client,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Writes raw bytes as the value of an entry (tests use it to store corrupt data).
    #[doc(hidden)]
    pub async fn put_raw(&self, collection: &str, key: &str, raw: Bytes) -> Result<()> {
        let k = self.key(collection, key);
        self.run(Operation::Put, Some(collection), Some(key), async {
            self.client()
                .put(k, raw.to_vec(), None)
                .await
                .map_err(etcd_err)
                .map(drop)
        })
        .await
    }

    fn client(&self) -> Client {
        self.inner.client.clone()
    }

    fn key(&self, collection: &str, key: &str) -> Vec<u8> {
        format::entry_key(
            &self.inner.cfg.prefix,
            self.inner.info.resolve(collection),
            key,
        )
    }

    async fn run<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let r = if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::new(ErrorKind::Closed, "the etcd store is closed"))
        } else {
            match tokio::time::timeout(self.inner.cfg.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "etcd operation did not finish within {:?}",
                        self.inner.cfg.timeout
                    ),
                )),
            }
        };
        r.map_err(|e| e.with_context(SCHEME, op, collection, key))
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        let max = self.inner.cfg.max_value_len;
        if value.len() > max {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "value of {} bytes exceeds this etcd store's limit of {max} bytes",
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    /// Put options carrying a fresh lease for `ttl`.
    async fn lease(&self, ttl: Option<Duration>) -> Result<Option<EPut>> {
        let Some(t) = ttl else { return Ok(None) };
        let id = self
            .client()
            .lease_grant(lease_secs(t), None)
            .await
            .map_err(etcd_err)?
            .id();
        Ok(Some(EPut::new().with_lease(id)))
    }

    fn encode(now: Timestamp, ttl: Option<Duration>, value: &[u8]) -> Result<Vec<u8>> {
        let meta = Meta {
            expires_at: ttl::expires_at(now, ttl)?,
            created_at: Some(now),
            version: None,
        };
        Ok(envelope::encode(&meta, value))
    }

    async fn get_kv(&self, k: Vec<u8>) -> Result<Option<KeyValue>> {
        let mut r = self.client().get(k, None).await.map_err(etcd_err)?;
        Ok(r.take_kvs().into_iter().next())
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
        let raw = Self::encode(now, opts.ttl, &value)?;
        let k = self.key(collection, key);
        let lease = self.lease(opts.ttl).await?;
        let put = || TxnOp::put(k.clone(), raw.clone(), lease.clone());
        match opts.mode {
            PutMode::IfAbsent => {
                let txn = Txn::new()
                    .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
                    .and_then([put()])
                    .or_else([TxnOp::get(k.clone(), None)]);
                let r = self.client().txn(txn).await.map_err(etcd_err)?;
                if r.succeeded() {
                    return Ok(());
                }
                let Some(old) = first_get(&r.op_responses()) else {
                    return Err(exists());
                };
                // Present: fine only if it expired by its exact expiry (its lease may not
                // have run out yet). Replace it if it is still that same revision.
                if !matches!(decode_entry(&old, now), Ok(None)) {
                    return Err(exists());
                }
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        k.clone(),
                        CompareOp::Equal,
                        old.mod_revision(),
                    )])
                    .and_then([put()]);
                if self.client().txn(txn).await.map_err(etcd_err)?.succeeded() {
                    Ok(())
                } else {
                    Err(exists())
                }
            }
            PutMode::IfVersion(v) => {
                let want = v
                    .as_u64()
                    .and_then(|n| i64::try_from(n).ok())
                    .filter(|n| *n > 0);
                let want = want.ok_or_else(changed)?;
                let Some(old) = self.get_kv(k.clone()).await? else {
                    return Err(changed());
                };
                if old.mod_revision() != want || !matches!(decode_entry(&old, now), Ok(Some(_))) {
                    return Err(changed());
                }
                let txn = Txn::new()
                    .when([Compare::mod_revision(k.clone(), CompareOp::Equal, want)])
                    .and_then([put()]);
                if self.client().txn(txn).await.map_err(etcd_err)?.succeeded() {
                    Ok(())
                } else {
                    Err(changed())
                }
            }
            _ => {
                self.client().put(k, raw, lease).await.map_err(etcd_err)?;
                Ok(())
            }
        }
    }

    async fn get_inner(
        &self,
        collection: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Entry>> {
        match self.get_kv(self.key(collection, key)).await? {
            None => Ok(None),
            Some(kv) => decode_entry(&kv, now),
        }
    }

    async fn scan_inner(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let after = scan::key_after(&opts)?;
        let c = self.inner.info.resolve(collection);
        let cp = format::collection_prefix(&self.inner.cfg.prefix, c);
        let mut start = match after {
            Some(a) => {
                let mut s = format::entry_key(&self.inner.cfg.prefix, c, a);
                s.push(0);
                s
            }
            None => format::entry_key(&self.inner.cfg.prefix, c, &opts.prefix),
        };
        let end = format::prefix_end(&format::entry_key(&self.inner.cfg.prefix, c, &opts.prefix));
        let limit = opts.page_size.max(1);
        let now = Timestamp::now();
        let mut items: Vec<ScanItem> = Vec::new();
        let more = 'outer: loop {
            let want = (limit - items.len()).clamp(1, 1000) as i64 + 1;
            let mut r = self
                .client()
                .get(
                    start.clone(),
                    Some(EGet::new().with_range(end.clone()).with_limit(want)),
                )
                .await
                .map_err(etcd_err)?;
            let server_more = r.more();
            let kvs = r.take_kvs();
            let n = kvs.len();
            for (i, kv) in kvs.iter().enumerate() {
                let key = std::str::from_utf8(&kv.key()[cp.len()..]).map_err(|_| {
                    Error::new(ErrorKind::Corrupt, "an etcd key of this store is not UTF-8")
                })?;
                if let Some(e) = decode_entry(kv, now).map_err(|e| e.with_key(key))? {
                    items.push(ScanItem::new(
                        key.to_owned(),
                        (!opts.keys_only).then_some(e),
                    ));
                    if items.len() == limit {
                        break 'outer i + 1 < n || server_more;
                    }
                }
            }
            match kvs.last() {
                Some(last) if server_more => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break false,
            }
        };
        let cursor = if more {
            items.last().map(|i| scan::cursor_after(&i.key))
        } else {
            None
        };
        Ok(ScanPage::new(items, cursor))
    }

    /// Runs operations in transactions of at most [`MAX_TXN_OPS`] each.
    async fn txn_chunks(&self, ops: Vec<TxnOp>) -> Result<Vec<TxnOpResponse>> {
        let mut out = Vec::with_capacity(ops.len());
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let chunk: Vec<TxnOp> = ops.by_ref().take(MAX_TXN_OPS).collect();
            let r = self
                .client()
                .txn(Txn::new().and_then(chunk))
                .await
                .map_err(etcd_err)?;
            out.extend(r.op_responses());
        }
        Ok(out)
    }

    async fn cull_inner(&self) -> Result<u64> {
        let p = format!("{}/", self.inner.cfg.prefix).into_bytes();
        let end = format::prefix_end(&p);
        let now = Timestamp::now();
        let mut start = p;
        let mut n = 0;
        loop {
            let mut r = self
                .client()
                .get(
                    start.clone(),
                    Some(EGet::new().with_range(end.clone()).with_limit(1000)),
                )
                .await
                .map_err(etcd_err)?;
            let more = r.more();
            let kvs = r.take_kvs();
            for kv in &kvs {
                if let Ok((meta, _)) = envelope::decode(Bytes::copy_from_slice(kv.value()))
                    && meta.is_expired_at(now)
                {
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            kv.key(),
                            CompareOp::Equal,
                            kv.mod_revision(),
                        )])
                        .and_then([TxnOp::delete(kv.key(), None)]);
                    if self.client().txn(txn).await.map_err(etcd_err)?.succeeded() {
                        n += 1;
                    }
                }
            }
            match kvs.last() {
                Some(last) if more => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok(n),
            }
        }
    }
}

fn first_get(responses: &[TxnOpResponse]) -> Option<KeyValue> {
    responses.iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    })
}

/// Whether a deleted value was a live entry (corrupt bytes count as live: the entry existed).
fn was_live(kv: &KeyValue, now: Timestamp) -> bool {
    !matches!(decode_entry(kv, now), Ok(None))
}

impl KvStore for EtcdStore {
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
            let ops = keys
                .iter()
                .map(|k| TxnOp::get(self.key(collection, k), None))
                .collect();
            let responses = self.txn_chunks(ops).await?;
            let mut out = Vec::with_capacity(keys.len());
            for (r, k) in responses.iter().zip(keys) {
                let kv = match r {
                    TxnOpResponse::Get(g) => g.kvs().first(),
                    _ => None,
                };
                out.push(match kv {
                    None => None,
                    Some(kv) => decode_entry(kv, now).map_err(|e| e.with_key(k))?,
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
            let lease = self.lease(opts.ttl).await?;
            // A key given twice: etcd refuses duplicate keys in one txn, so keep the last.
            let mut seen = std::collections::HashSet::new();
            let mut ops = Vec::with_capacity(entries.len());
            for (k, v) in entries.iter().rev() {
                if seen.insert(*k) {
                    let raw = Self::encode(now, opts.ttl, v)?;
                    ops.push(TxnOp::put(self.key(collection, k), raw, lease.clone()));
                }
            }
            ops.reverse();
            self.txn_chunks(ops).await.map(drop)
        })
    }

    fn delete_opts(
        &self,
        collection: &str,
        key: &str,
        _: DeleteOptions,
    ) -> impl Future<Output = Result<bool>> + Send {
        self.run(Operation::Delete, Some(collection), Some(key), async move {
            let mut r = self
                .client()
                .delete(
                    self.key(collection, key),
                    Some(EDelete::new().with_prev_key()),
                )
                .await
                .map_err(etcd_err)?;
            let now = Timestamp::now();
            Ok(r.take_prev_kvs().iter().any(|kv| was_live(kv, now)))
        })
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
            let ops = distinct
                .iter()
                .map(|k| {
                    TxnOp::delete(
                        self.key(collection, k),
                        Some(EDelete::new().with_prev_key()),
                    )
                })
                .collect();
            let now = Timestamp::now();
            let mut n = 0;
            for r in self.txn_chunks(ops).await? {
                if let TxnOpResponse::Delete(d) = r {
                    n += d.prev_kvs().iter().filter(|kv| was_live(kv, now)).count() as u64;
                }
            }
            Ok(n)
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
            let p = format!("{}/", self.inner.cfg.prefix).into_bytes();
            let end = format::prefix_end(&p);
            let mut start = p.clone();
            let mut out = Vec::new();
            loop {
                let mut r = self
                    .client()
                    .get(
                        start.clone(),
                        Some(
                            EGet::new()
                                .with_range(end.clone())
                                .with_limit(1)
                                .with_keys_only(),
                        ),
                    )
                    .await
                    .map_err(etcd_err)?;
                let Some(kv) = r.take_kvs().into_iter().next() else {
                    return Ok(out);
                };
                let rest = &kv.key()[p.len()..];
                let Some(slash) = rest.iter().position(|&b| b == b'/') else {
                    start = kv.key().to_vec();
                    start.push(0);
                    continue;
                };
                if let Some(c) = format::unescape_collection(&rest[..slash]) {
                    out.push(c);
                }
                start = format::prefix_end(&kv.key()[..p.len() + slash + 1]);
            }
        })
    }

    fn clear_opts(
        &self,
        collection: &str,
        _: ClearOptions,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::Clear, Some(collection), None, async move {
            let cp = format::collection_prefix(
                &self.inner.cfg.prefix,
                self.inner.info.resolve(collection),
            );
            let mut r = self
                .client()
                .delete(cp, Some(EDelete::new().with_prefix().with_prev_key()))
                .await
                .map_err(etcd_err)?;
            let now = Timestamp::now();
            Ok(r.take_prev_kvs()
                .iter()
                .filter(|kv| was_live(kv, now))
                .count() as u64)
        })
    }

    fn destroy_opts(&self, _: DestroyOptions) -> impl Future<Output = Result<()>> + Send {
        self.run(Operation::Destroy, None, None, async move {
            let p = format!("{}/", self.inner.cfg.prefix);
            self.client()
                .delete(p, Some(EDelete::new().with_prefix()))
                .await
                .map_err(etcd_err)
                .map(drop)
        })
    }

    fn cull_opts(&self, _: CullOptions) -> impl Future<Output = Result<u64>> + Send {
        self.run(Operation::Cull, None, None, self.cull_inner())
    }

    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        self.inner.closed.store(true, Ordering::Release);
        std::future::ready(Ok(()))
    }
}
