//! The store: a connection (standalone through a reconnecting `ConnectionManager`, or a
//! Redis Cluster connection) and the `KvStore` implementation.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kv_core::{
    Capability, ClearOptions, CollectionsOptions, CullOptions, DeleteOptions, DestroyOptions,
    Entry, Error, ErrorKind, GetOptions, KvStore, Operation, PutManyOptions, PutMode, PutOptions,
    Result, ScanItem, ScanOptions, ScanPage, StoreInfo, Timestamp, Ttl,
};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisConnectionInfo,
    RedisError, RedisFuture, ServerErrorKind, Value,
};

use crate::config::{Layout, RedisConfig, Tls};
use crate::format;

/// The largest value accepted: Redis strings hold at most 512 MiB (`proto-max-bulk-len`),
/// minus room for the envelope.
pub const MAX_VALUE_LEN: usize = 512 * 1024 * 1024 - 64;

/// How many keys one `DEL` of a clear/destroy removes.
const DELETE_BATCH: usize = 500;

/// A connection to a standalone server or to a cluster; cheap to clone (both are handles to
/// one multiplexed connection per node).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Runs a command on the node given by `route` (the node owning a slot); on a standalone
    /// server the route is ignored.
    async fn on_node(&mut self, cmd: Cmd, route: Option<&Route>) -> redis::RedisResult<Value> {
        match (self, route) {
            (Conn::Cluster(c), Some(r)) => {
                c.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(*r)),
                )
                .await
            }
            (c, _) => cmd.query_async(c).await,
        }
    }
}

struct Inner {
    config: RedisConfig,
    info: StoreInfo,
    conn: RwLock<Option<Conn>>,
    script: redis::Script,
    /// Prefix of every key of this store (native layout).
    ns_prefix: String,
}

/// A kv store on Redis, Valkey or Redis Cluster. Cheap to clone (clones share the connection).
///
/// Open it with [`RedisStore::connect`] (`redis://`, `rediss://`, `redis+cluster://`,
/// `valkey://`, ...). Its futures need a Tokio runtime (the connection runs on it).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("location", &self.inner.info.location)
            .field("namespace", &self.inner.config.namespace)
            .field("cluster", &self.inner.config.cluster)
            .finish()
    }
}

fn node_info(cfg: &RedisConfig, host: &str, port: u16) -> redis::RedisResult<ConnectionInfo> {
    let addr = match cfg.tls {
        Tls::None => ConnectionAddr::Tcp(host.to_owned(), port),
        Tls::Insecure => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: true,
            tls_params: None,
        },
        Tls::System | Tls::Ca(_) => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        },
    };
    let mut redis = RedisConnectionInfo::default().set_db(cfg.db);
    if let Some(u) = &cfg.username {
        redis = redis.set_username(u);
    }
    if let Some(p) = &cfg.password {
        redis = redis.set_password(p);
    }
    Ok(addr.into_connection_info()?.set_redis_settings(redis))
}

fn tls_certs(cfg: &RedisConfig) -> Result<Option<redis::TlsCertificates>> {
    if cfg.tls != Tls::None && rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one first: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    match &cfg.tls {
        Tls::Ca(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("cannot read the CA certificate {}: {e}", path.display()),
                )
            })?;
            Ok(Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            }))
        }
        _ => Ok(None),
    }
}

impl RedisStore {
    /// Connects to the server (or cluster) of a URL; see the crate docs for the URL forms.
    /// Fails with a temporary [`ErrorKind::Unavailable`] error if the server does not answer
    /// within the operation timeout.
    pub async fn connect(url: &str) -> Result<RedisStore> {
        let config = RedisConfig::from_url(url)?;
        Self::connect_with(config).await
    }

    /// Connects with a config built in code.
    pub async fn connect_with(config: RedisConfig) -> Result<RedisStore> {
        config.validate()?;
        let ctx = |e: Error| e.with_store(config.kind).with_operation(Operation::Open);
        let certs = tls_certs(&config).map_err(ctx)?;
        let timeout = config.timeout;
        let connecting = async {
            let mut infos = Vec::new();
            for (h, p) in &config.nodes {
                infos.push(node_info(&config, h, *p)?);
            }
            if config.cluster {
                let mut b = redis::cluster::ClusterClientBuilder::new(infos)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(200);
                if let Some(c) = certs {
                    b = b.certs(c);
                }
                let client = b.build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            } else {
                let info = infos.remove(0);
                let client = match certs {
                    Some(c) => redis::Client::build_with_tls(info, c)?,
                    None => redis::Client::open(info)?,
                };
                let mgr = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(4)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(100));
                let mut conn = ConnectionManager::new_with_config(client, mgr).await?;
                // Fail now, not on first use, if the server is not there.
                redis::cmd("PING").query_async::<()>(&mut conn).await?;
                Ok(Conn::Single(conn))
            }
        };
        let conn = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(ctx(redis_error(&config, e))),
            Err(_) => {
                return Err(ctx(Error::new(
                    ErrorKind::Unavailable,
                    format!("no connection to {} within {timeout:?}", config.location),
                )));
            }
        };
        let capability = Capability {
            stores_data: true,
            ttl: true,
            ttl_native: true,
            ttl_granularity: Duration::from_millis(1),
            ttl_max: None,
            batch_native: true,
            batch_max: None,
            scan: true,
            scan_ordered: true,
            list_collections: true,
            clear: true,
            destroy: true,
            if_absent: true,
            compare_and_swap: config.layout == Layout::Native,
            created_at: true,
            durable: true,
            shared: true,
            read_only: false,
            evicts: false,
            max_key_len: None,
            max_collection_len: None,
            max_value_len: Some(MAX_VALUE_LEN),
        };
        let info = StoreInfo::new(config.kind, config.location.clone(), capability)
            .with_default_collection(config.default_collection.clone());
        let ns_prefix = format::namespace_prefix(&config.namespace);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                config,
                info,
                conn: RwLock::new(Some(conn)),
                script: redis::Script::new(format::CONDITIONAL_PUT_LUA),
                ns_prefix,
            }),
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The Redis key of an entry (for tools and tests that look at the raw data).
    pub fn redis_key(&self, collection: &str, key: &str) -> Vec<u8> {
        let c = self.inner.info.resolve(collection);
        self.raw_key(c, key)
    }

    /// Runs a raw Redis command on the store's connection (routed by its first key on a
    /// cluster). For tools and tests; the store's own layout is documented in
    /// [`format`](crate::format).
    pub async fn raw_command<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut c = self.conn()?;
        cmd.query_async(&mut c)
            .await
            .map_err(|e| redis_error(&self.inner.config, e))
    }

    /// A blocking twin of this store for programs without a runtime.
    pub fn sync(&self) -> kv_core::SyncStore<Self> {
        kv_core::SyncStore::new(self.clone())
    }

    fn conn(&self) -> Result<Conn> {
        self.inner
            .conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::Closed, "the store is closed"))
    }

    fn kind(&self) -> &'static str {
        self.inner.info.kind
    }

    fn native(&self) -> bool {
        self.inner.config.layout == Layout::Native
    }

    fn coll_prefix(&self, collection: &str) -> String {
        match self.inner.config.layout {
            Layout::Native => format::collection_prefix(&self.inner.config.namespace, collection),
            Layout::PyKv => {
                format::pykv_collection_prefix(&self.inner.config.namespace, collection)
            }
        }
    }

    fn raw_key(&self, collection: &str, key: &str) -> Vec<u8> {
        match self.inner.config.layout {
            Layout::Native => format::native_key(&self.inner.config.namespace, collection, key),
            Layout::PyKv => {
                let mut k = self.coll_prefix(collection).into_bytes();
                k.extend_from_slice(key.as_bytes());
                k
            }
        }
    }

    fn check_collection(&self, collection: &str) -> Result<()> {
        if !self.native() && collection.contains(format::PYKV_SEP) {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "the py-key-value layout cannot hold collection names containing `::`",
            ));
        }
        Ok(())
    }

    /// The route of a collection's node on a cluster (native layout: its hash tag), or
    /// `None` when the collection spans every node (py-key-value layout) or there is no cluster.
    fn coll_route(&self, collection: &str) -> Option<Route> {
        (self.native() && self.inner.config.cluster)
            .then(|| Route::with_key(self.coll_prefix(collection).as_bytes(), SlotAddr::Master))
    }

    /// Runs `fut` with the operation timeout and adds context to its error. On one server,
    /// every command already has the timeout as the client's response timeout, so operations
    /// that are one round trip (or a fixed few) need no timer of their own — a second timer
    /// per operation cost measurable throughput at 64 concurrent tasks. Scans and cluster
    /// operations get an overall deadline;
    /// operations that walk a whole collection or namespace (clear, destroy, collections) are
    /// bounded per command only, as their length grows with the data.
    async fn run<T>(
        &self,
        op: Operation,
        collection: Option<&str>,
        key: Option<&str>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.inner.config.timeout;
        // A cluster client retries a command (MOVED, a failed node) within its own loop,
        // so there the deadline of the whole operation needs the timer.
        let per_command_only = !self.inner.config.cluster && !matches!(op, Operation::Scan);
        let r = if per_command_only {
            fut.await
        } else {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("the server did not answer within {timeout:?}"),
                )),
            }
        };
        r.map_err(|e| e.with_context(self.kind(), op, collection, key))
    }

    fn rerr(&self, e: RedisError) -> Error {
        redis_error(&self.inner.config, e)
    }

    fn decode(&self, raw: Vec<u8>, now: Timestamp) -> Result<Option<Entry>> {
        if self.native() {
            format::decode_native(Bytes::from(raw), now)
        } else {
            format::decode_pykv(&raw, now)
        }
    }

    fn encode(
        &self,
        collection: &str,
        key: &str,
        value: &[u8],
        now: Timestamp,
        expires_at: Option<Timestamp>,
        version: u64,
    ) -> Result<Vec<u8>> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "the value has {} bytes; Redis strings hold at most {MAX_VALUE_LEN}",
                    value.len()
                ),
            ));
        }
        if self.native() {
            Ok(format::encode_native(value, now, expires_at, version))
        } else {
            format::encode_pykv(value, collection, key, now, expires_at)
        }
    }

    /// Appends `WAIT n timeout` when the store waits for replicas.
    fn add_wait(&self, p: &mut Pipeline) -> bool {
        match self.inner.config.wait_replicas {
            Some(n) => {
                let ms = self
                    .inner
                    .config
                    .effective_wait_timeout()
                    .as_millis()
                    .max(1) as u64;
                p.cmd("WAIT").arg(n).arg(ms);
                true
            }
            None => false,
        }
    }

    fn check_wait(&self, acked: &Value) -> Result<()> {
        let Some(n) = self.inner.config.wait_replicas else {
            return Ok(());
        };
        let got: i64 = redis::from_redis_value_ref(acked)
            .map_err(|e| Error::new(ErrorKind::Backend, format!("WAIT: {e}")))?;
        if got < i64::from(n) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the write reached {got} of the {n} replicas required (wait={n}) within {:?}; \
                     it may be lost on failover",
                    self.inner.config.effective_wait_timeout()
                ),
            ));
        }
        Ok(())
    }

    /// Sends a pipeline of writes (plus `WAIT`), returning the writes' replies.
    async fn write_pipeline(&self, mut p: Pipeline) -> Result<Vec<Value>> {
        let waits = self.add_wait(&mut p);
        let mut c = self.conn()?;
        let mut out: Vec<Value> = p.query_async(&mut c).await.map_err(|e| self.rerr(e))?;
        if waits {
            let acked = out.pop().unwrap_or(Value::Nil);
            self.check_wait(&acked)?;
        }
        Ok(out)
    }

    /// The conditional-put script (with `WAIT`), falling back from EVALSHA to EVAL when the
    /// server does not know the script (after a restart or failover).
    async fn conditional_put(&self, key: &[u8], args: &[&[u8]]) -> Result<i64> {
        let build = |by_sha: bool| {
            let mut p = redis::pipe();
            let c = if by_sha {
                p.cmd("EVALSHA").arg(self.inner.script.get_hash())
            } else {
                p.cmd("EVAL").arg(format::CONDITIONAL_PUT_LUA)
            };
            c.arg(1).arg(key);
            for a in args {
                c.arg(*a);
            }
            p
        };
        let out = match self.write_pipeline(build(true)).await {
            Err(e) if e.message().contains("NOSCRIPT") || e.message().contains("NoScript") => {
                self.write_pipeline(build(false)).await?
            }
            r => r?,
        };
        let v = out.into_iter().next().unwrap_or(Value::Nil);
        redis::from_redis_value(v)
            .map_err(|e| Error::new(ErrorKind::Backend, format!("conditional put script: {e}")))
    }

    /// The primaries to scan for whole-store scans: one route per primary (by one of its
    /// slots, so a failover is followed), or `[None]` for a standalone server.
    async fn nodes(&self) -> Result<Vec<Option<Route>>> {
        let mut c = self.conn()?;
        if !self.inner.config.cluster {
            return Ok(vec![None]);
        }
        let v: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut c)
            .await
            .map_err(|e| self.rerr(e))?;
        let ranges: Vec<Vec<Value>> = redis::from_redis_value(v)
            .map_err(|e| Error::new(ErrorKind::Backend, format!("CLUSTER SLOTS: {e}")))?;
        let mut by_master: std::collections::BTreeMap<String, u16> = Default::default();
        for r in ranges {
            let start: i64 = r
                .first()
                .and_then(|v| redis::from_redis_value_ref(v).ok())
                .unwrap_or(-1);
            let master = r
                .get(2)
                .and_then(|v| redis::from_redis_value_ref::<Vec<Value>>(v).ok())
                .map(|m| {
                    let host: String = m
                        .first()
                        .and_then(|v| redis::from_redis_value_ref(v).ok())
                        .unwrap_or_default();
                    let port: i64 = m
                        .get(1)
                        .and_then(|v| redis::from_redis_value_ref(v).ok())
                        .unwrap_or_default();
                    format!("{host}:{port}")
                });
            if let (Ok(slot), Some(m)) = (u16::try_from(start), master) {
                let e = by_master.entry(m).or_insert(slot);
                *e = (*e).min(slot);
            }
        }
        let mut slots: Vec<u16> = by_master.into_values().collect();
        slots.sort_unstable();
        Ok(slots
            .into_iter()
            .map(|s| Some(Route::new(s, SlotAddr::Master)))
            .collect())
    }

    /// One `SCAN` step on one node.
    async fn scan_step(
        &self,
        route: Option<&Route>,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut c = self.conn()?;
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let v = c.on_node(cmd, route).await.map_err(|e| self.rerr(e))?;
        redis::from_redis_value(v).map_err(|e| Error::new(ErrorKind::Backend, format!("SCAN: {e}")))
    }

    /// Every key matching `pattern` on the given nodes, passed to `each` in batches.
    async fn scan_all<F>(&self, routes: &[Option<Route>], pattern: &str, mut each: F) -> Result<()>
    where
        F: AsyncBatch,
    {
        for route in routes {
            let mut cursor = 0;
            loop {
                let (next, keys) = self
                    .scan_step(route.as_ref(), cursor, pattern, 1000)
                    .await?;
                if !keys.is_empty() {
                    each.call(self, keys).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    async fn get_impl(&self, collection: &str, key: &str) -> Result<Option<Entry>> {
        self.check_collection(collection)?;
        let mut c = self.conn()?;
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.raw_key(collection, key))
            .query_async(&mut c)
            .await
            .map_err(|e| self.rerr(e))?;
        match raw {
            None => Ok(None),
            Some(raw) => self.decode(raw, Timestamp::now()),
        }
    }

    async fn mget(&self, collection: &str, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        self.check_collection(collection)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(self.raw_key(collection, k));
        }
        let mut c = self.conn()?;
        let raws: Vec<Option<Vec<u8>>> = cmd.query_async(&mut c).await.map_err(|e| self.rerr(e))?;
        let now = Timestamp::now();
        let mut out = Vec::with_capacity(keys.len());
        for (raw, key) in raws.into_iter().zip(keys) {
            out.push(match raw {
                None => None,
                Some(raw) => self.decode(raw, now).map_err(|e| e.with_key(key))?,
            });
        }
        if out.len() != keys.len() {
            return Err(Error::new(
                ErrorKind::Backend,
                "MGET returned a different number of values than keys",
            ));
        }
        Ok(out)
    }

    async fn put_impl(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        self.check_collection(collection)?;
        let now = Timestamp::now();
        let expires_at = kv_core::ttl::expires_at(now, opts.ttl)?;
        let px = px_millis(opts.ttl)?;
        let version = new_version();
        let raw = self.encode(collection, key, &value, now, expires_at, version)?;
        let rk = self.raw_key(collection, key);
        match opts.mode {
            PutMode::Upsert => {
                let mut p = redis::pipe();
                let c = p.cmd("SET").arg(&rk).arg(&raw);
                if let Some(ms) = px {
                    c.arg("PX").arg(ms);
                }
                self.write_pipeline(p).await?;
                Ok(())
            }
            PutMode::IfAbsent if !self.native() => {
                let mut p = redis::pipe();
                let c = p.cmd("SET").arg(&rk).arg(&raw).arg("NX");
                if let Some(ms) = px {
                    c.arg("PX").arg(ms);
                }
                let out = self.write_pipeline(p).await?;
                match out.first() {
                    Some(Value::Nil) | None => Err(condition_failed("the key exists")),
                    Some(_) => Ok(()),
                }
            }
            PutMode::IfVersion(_) if !self.native() => Err(Error::new(
                ErrorKind::Unsupported,
                "compare-and-swap needs the native layout (py-key-value documents have no version)",
            )),
            mode => {
                let (m, expected): (&[u8], [u8; 8]) = match &mode {
                    PutMode::IfAbsent => (b"nx", [0; 8]),
                    PutMode::IfVersion(v) => match v.as_u64() {
                        Some(n) => (b"cas", n.to_le_bytes()),
                        // A version this store never produced cannot match.
                        None => return Err(condition_failed("the version does not match")),
                    },
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            "unknown put mode for the redis store",
                        ));
                    }
                };
                let now_s = now.as_unix_micros().to_string();
                let px_s = px.map(|ms| ms.to_string()).unwrap_or_default();
                let r = self
                    .conditional_put(
                        &rk,
                        &[m, now_s.as_bytes(), &expected, &raw, px_s.as_bytes()],
                    )
                    .await?;
                match r {
                    1 => Ok(()),
                    0 => Err(condition_failed(if m == b"nx" {
                        "a live entry exists"
                    } else {
                        "the entry is missing, expired or has another version"
                    })),
                    _ => Err(Error::new(
                        ErrorKind::Corrupt,
                        "the stored value is not a kv envelope",
                    )),
                }
            }
        }
    }

    async fn put_many_impl(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        self.check_collection(collection)?;
        if entries.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now();
        let expires_at = kv_core::ttl::expires_at(now, opts.ttl)?;
        let px = px_millis(opts.ttl)?;
        let mut sets = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let raw = self
                .encode(collection, k, v, now, expires_at, new_version())
                .map_err(|e| e.with_key(k))?;
            let mut c = redis::cmd("SET");
            c.arg(self.raw_key(collection, k)).arg(raw);
            if let Some(ms) = px {
                c.arg("PX").arg(ms);
            }
            sets.push(c);
        }
        if self.inner.config.cluster && !self.native() {
            // py-key-value keys of one collection spread over slots: one pipeline per key,
            // sent concurrently (not atomic).
            let futs = sets.into_iter().map(|c| {
                let mut p = redis::pipe();
                p.add_command(c);
                self.write_pipeline(p)
            });
            for r in futures_util::future::join_all(futs).await {
                r?;
            }
            return Ok(());
        }
        // One round trip, applied atomically.
        let mut p = redis::pipe();
        p.cmd("MULTI");
        for c in sets {
            p.add_command(c);
        }
        p.cmd("EXEC");
        self.write_pipeline(p).await?;
        Ok(())
    }

    async fn delete_impl(&self, collection: &str, keys: &[&str]) -> Result<u64> {
        self.check_collection(collection)?;
        if keys.is_empty() {
            return Ok(0);
        }
        let mut p = redis::pipe();
        let c = p.cmd("DEL");
        for k in keys {
            c.arg(self.raw_key(collection, k));
        }
        let out = self.write_pipeline(p).await?;
        let n: i64 = out
            .first()
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or(0);
        Ok(n.max(0) as u64)
    }

    async fn scan_impl(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        self.check_collection(collection)?;
        // Validate the cursor before any work.
        kv_core::scan::key_after(&opts)?;
        let cprefix = self.coll_prefix(collection);
        let pattern = format!(
            "{}{}*",
            format::glob_escape(&cprefix),
            format::glob_escape(&opts.prefix)
        );
        let routes: Vec<Option<Route>> = if self.inner.config.cluster && !self.native() {
            self.nodes().await?
        } else {
            vec![self.coll_route(collection)]
        };
        // Every page walks the collection's keys with SCAN and picks the next `page_size`
        // keys in order after the cursor: pages never repeat or skip a key, even when Redis
        // SCAN itself returns a key twice (it may, while its hash table shrinks).
        let mut all = Keys {
            prefix: cprefix.into_bytes(),
            keys: Vec::new(),
        };
        self.scan_all(&routes, &pattern, &mut all).await?;
        let (page, more) = kv_core::scan::select_page(all.keys.iter().map(String::as_str), &opts)?;
        let cursor = if more {
            page.last().map(|k| kv_core::scan::cursor_after(k))
        } else {
            None
        };
        let keys: Vec<String> = page.into_iter().map(str::to_owned).collect();
        if opts.keys_only {
            let items = keys.into_iter().map(|k| ScanItem::new(k, None)).collect();
            return Ok(ScanPage::new(items, cursor));
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let entries = self.mget(collection, &refs).await?;
        let items = keys
            .into_iter()
            .zip(entries)
            .filter_map(|(k, e)| e.map(|e| ScanItem::new(k, Some(e))))
            .collect();
        Ok(ScanPage::new(items, cursor))
    }

    async fn collections_impl(&self) -> Result<Vec<String>> {
        let routes = self.nodes().await?;
        let ns = &self.inner.config.namespace;
        let pattern = if self.native() {
            format!("{}*", format::glob_escape(&self.inner.ns_prefix))
        } else if ns.is_empty() {
            format!("*{}*", format::PYKV_SEP)
        } else {
            format!("{}:*{}*", format::glob_escape(ns), format::PYKV_SEP)
        };
        let mut found = Collect(BTreeSet::new());
        self.scan_all(&routes, &pattern, &mut found).await?;
        Ok(found.0.into_iter().collect())
    }

    async fn clear_impl(&self, collection: &str) -> Result<u64> {
        self.check_collection(collection)?;
        let cprefix = self.coll_prefix(collection);
        let pattern = format!("{}*", format::glob_escape(&cprefix));
        let routes = if self.inner.config.cluster && !self.native() {
            self.nodes().await?
        } else {
            vec![self.coll_route(collection)]
        };
        let mut del = Delete(0);
        self.scan_all(&routes, &pattern, &mut del).await?;
        Ok(del.0)
    }

    async fn destroy_impl(&self) -> Result<()> {
        let routes = self.nodes().await?;
        let ns = &self.inner.config.namespace;
        let pattern = if self.native() {
            format!("{}*", format::glob_escape(&self.inner.ns_prefix))
        } else if ns.is_empty() {
            format!("*{}*", format::PYKV_SEP)
        } else {
            format!("{}:*{}*", format::glob_escape(ns), format::PYKV_SEP)
        };
        let mut del = Delete(0);
        self.scan_all(&routes, &pattern, &mut del).await?;
        Ok(())
    }
}

/// What [`RedisStore::scan_all`] does with each batch of keys.
trait AsyncBatch {
    fn call<'a>(
        &'a mut self,
        store: &'a RedisStore,
        keys: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<()>>;
}

impl<T: AsyncBatch> AsyncBatch for &mut T {
    fn call<'a>(
        &'a mut self,
        store: &'a RedisStore,
        keys: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<()>> {
        (**self).call(store, keys)
    }
}

/// Collects collection names.
struct Collect(BTreeSet<String>);

impl AsyncBatch for Collect {
    fn call<'a>(
        &'a mut self,
        store: &'a RedisStore,
        keys: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<()>> {
        for k in keys {
            let c = if store.native() {
                format::collection_of(&store.inner.ns_prefix, &k)
            } else {
                format::pykv_collection_of(&store.inner.config.namespace, &k)
            };
            if let Some(c) = c {
                self.0.insert(c);
            }
        }
        std::future::ready(Ok(())).boxed()
    }
}

/// Collects the keys of one collection (without its prefix).
struct Keys {
    prefix: Vec<u8>,
    keys: Vec<String>,
}

impl AsyncBatch for Keys {
    fn call<'a>(
        &'a mut self,
        _store: &'a RedisStore,
        keys: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<()>> {
        for raw in keys {
            // Keys that are not UTF-8 were not written by this store: skip them.
            if let Some(k) = raw
                .strip_prefix(self.prefix.as_slice())
                .and_then(|k| std::str::from_utf8(k).ok())
            {
                self.keys.push(k.to_owned());
            }
        }
        std::future::ready(Ok(())).boxed()
    }
}

/// Deletes keys, counting them.
struct Delete(u64);

impl AsyncBatch for Delete {
    fn call<'a>(
        &'a mut self,
        store: &'a RedisStore,
        keys: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            for chunk in keys.chunks(DELETE_BATCH) {
                let mut cmd = redis::cmd("DEL");
                for k in chunk {
                    cmd.arg(k.as_slice());
                }
                let mut c = store.conn()?;
                // On a cluster the client splits a multi-slot DEL by slot.
                let n: i64 = cmd.query_async(&mut c).await.map_err(|e| store.rerr(e))?;
                self.0 += n.max(0) as u64;
            }
            Ok(())
        }
        .boxed()
    }
}

fn condition_failed(why: &str) -> Error {
    Error::new(ErrorKind::ConditionFailed, why.to_owned())
}

/// A fresh random version for a write (unique with overwhelming probability).
fn new_version() -> u64 {
    rand::random::<u64>()
}

/// The TTL in whole milliseconds, rounded **up**, for `PX`.
fn px_millis(ttl: Option<Duration>) -> Result<Option<u64>> {
    let Some(d) = ttl else { return Ok(None) };
    kv_core::ttl::validate(d)?;
    let ms = d.as_nanos().div_ceil(1_000_000);
    // Redis keeps the absolute expiry in ms as a signed 64-bit number.
    if ms > (i64::MAX / 4) as u128 {
        return Err(Error::new(
            ErrorKind::InvalidTtl,
            format!("ttl of {d:?} is too large for Redis"),
        ));
    }
    Ok(Some(ms as u64))
}

/// Maps a client error onto kv's error kinds; connection trouble is temporary. The message
/// never contains the password.
fn redis_error(cfg: &RedisConfig, e: RedisError) -> Error {
    use redis::ErrorKind as K;
    let msg = cfg.scrub(&e.to_string());
    let (kind, temporary) = if e.is_timeout() {
        (ErrorKind::Timeout, true)
    } else if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == K::ClusterConnectionNotFound
    {
        (ErrorKind::Unavailable, true)
    } else {
        match e.kind() {
            K::AuthenticationFailed => (ErrorKind::Config, false),
            K::InvalidClientConfig => (ErrorKind::Config, false),
            K::Server(
                ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::ReadOnly,
            ) => (ErrorKind::Unavailable, true),
            _ => (ErrorKind::Backend, false),
        }
    };
    Error::new(kind, format!("redis: {msg}")).temporary(temporary)
}

impl KvStore for RedisStore {
    fn info(&self) -> &StoreInfo {
        &self.inner.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        _opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let c = self.inner.info.resolve(collection);
        self.run(Operation::Get, Some(c), Some(key), self.get_impl(c, key))
            .await
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let c = self.inner.info.resolve(collection);
        self.run(Operation::GetMany, Some(c), None, self.mget(c, keys))
            .await
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let c = self.inner.info.resolve(collection);
        self.run(
            Operation::Put,
            Some(c),
            Some(key),
            self.put_impl(c, key, value, opts),
        )
        .await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let c = self.inner.info.resolve(collection);
        self.run(
            Operation::PutMany,
            Some(c),
            None,
            self.put_many_impl(c, entries, opts),
        )
        .await
    }

    async fn delete_opts(&self, collection: &str, key: &str, _opts: DeleteOptions) -> Result<bool> {
        let c = self.inner.info.resolve(collection);
        let fut = async move { Ok(self.delete_impl(c, &[key]).await? > 0) };
        self.run(Operation::Delete, Some(c), Some(key), fut).await
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        _opts: DeleteOptions,
    ) -> Result<u64> {
        let c = self.inner.info.resolve(collection);
        self.run(
            Operation::DeleteMany,
            Some(c),
            None,
            self.delete_impl(c, keys),
        )
        .await
    }

    async fn ttl_opts(
        &self,
        collection: &str,
        key: &str,
        _opts: GetOptions,
    ) -> Result<Option<Ttl>> {
        let c = self.inner.info.resolve(collection);
        let fut = async move {
            let e = self.get_impl(c, key).await?;
            Ok(e.map(|e| e.ttl_at(Timestamp::now())))
        };
        self.run(Operation::Ttl, Some(c), Some(key), fut).await
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let c = self.inner.info.resolve(collection);
        self.run(Operation::Scan, Some(c), None, self.scan_impl(c, opts))
            .await
    }

    async fn collections_opts(&self, _opts: CollectionsOptions) -> Result<Vec<String>> {
        self.run(Operation::Collections, None, None, self.collections_impl())
            .await
    }

    async fn clear_opts(&self, collection: &str, _opts: ClearOptions) -> Result<u64> {
        let c = self.inner.info.resolve(collection);
        self.run(Operation::Clear, Some(c), None, self.clear_impl(c))
            .await
    }

    async fn destroy_opts(&self, _opts: DestroyOptions) -> Result<()> {
        self.run(Operation::Destroy, None, None, self.destroy_impl())
            .await
    }

    async fn cull_opts(&self, _opts: CullOptions) -> Result<u64> {
        // Redis expires entries itself.
        let r = self.conn().map(|_| 0);
        self.run(Operation::Cull, None, None, std::future::ready(r))
            .await
    }

    async fn close(&self) -> Result<()> {
        self.inner
            .conn
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(())
    }
}
