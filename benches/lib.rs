//! Shared helpers of the benchmarks (`cargo bench -p kv-benches`, or `cargo xtask bench`,
//! which also regenerates the tables of BENCHMARKS.md).
//!
//! Every store benchmark measures, in one criterion group per operation, a `baseline_*`
//! benchmark (the engine or client crate called directly, doing the same work on the same
//! data layout) next to kv (`kv_static`: the store type; `kv_dyn`: the handle `kv::open(url)`
//! returns). Both sides visit the keys in the same order ([`Workload`]); the ratio between them
//! is the facade's cost.
//!
//! - Embedded stores implement [`Side`] for each contender and run [`embedded_groups`].
//! - Server stores implement [`Op`] per operation and run [`bench_serial`] (one operation at
//!   a time) and [`bench_tasks`] (N concurrent tasks on a multi-thread runtime).
//!
//! A store whose service is not running is skipped with a printed line, never a failure
//! ([`skip`]); under `cargo xtask bench` the line is also left as a note that the report turns
//! into its "not measured in this run" list.
//!
//! ```
//! let w = kv_benches::Workload::new(1_000, 16);
//! assert_eq!(w.keys.len(), 1_000);
//! assert_eq!(w.value.len(), 16);
//! // Every key is visited once per round, in a scattered but fixed order.
//! let mut seen: Vec<usize> = (0..1_000).map(|i| w.index(i)).collect();
//! seen.sort_unstable();
//! assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
//! ```

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use kv_core::sync::{BlockOn, Park};
use kv_core::{GetOptions, KvStore, PutManyOptions, PutOptions, ScanOptions};

/// The collection every store benchmark uses.
pub const COLLECTION: &str = "bench";

/// How many entries the store benchmarks put in [`COLLECTION`] (and scan).
pub const ENTRIES: usize = 10_000;

/// The value size of the store benchmarks, in bytes.
pub const VALUE_SIZE: usize = 1024;

/// How many keys one `get_many` / `put_many` of the store benchmarks carries.
pub const BATCH: usize = 100;

/// `n` keys `key-000000`, `key-000001`, ...
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key-{i:06}")).collect()
}

/// A value of `size` bytes.
pub fn value(size: usize) -> Bytes {
    Bytes::from(
        (0..size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Criterion settings of the store benchmarks: 1 s warm-up and 3 s of measurement per
/// benchmark, so that a full `cargo xtask bench` stays around a quarter of an hour on two
/// cores. Command-line flags (`--measurement-time 10`) override them.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// The data of a store benchmark: the keys, the value, and the order keys are visited in.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The keys, `key-000000` ...
    pub keys: Vec<String>,
    /// The value every put writes.
    pub value: Bytes,
    /// A stride coprime with the key count: operation `i` touches key `i * stride mod n`,
    /// which visits every key once per round without walking the B-trees in order.
    stride: usize,
}

impl Workload {
    /// `n` keys and a value of `value_size` bytes.
    pub fn new(n: usize, value_size: usize) -> Self {
        let mut stride = 7919 % n.max(1);
        while n > 1 && gcd(stride, n) != 1 {
            stride += 1;
        }
        Workload {
            keys: keys(n),
            value: value(value_size),
            stride: stride.max(1),
        }
    }

    /// The workload of the store benchmarks: [`ENTRIES`] keys, values of [`VALUE_SIZE`].
    pub fn standard() -> Self {
        Self::new(ENTRIES, VALUE_SIZE)
    }

    /// The index of the key that operation `i` touches.
    pub fn index(&self, i: usize) -> usize {
        (i % self.keys.len()).wrapping_mul(self.stride) % self.keys.len()
    }

    /// The key that operation `i` touches.
    pub fn key(&self, i: usize) -> &str {
        &self.keys[self.index(i)]
    }

    /// The key indices of batch `i`: [`BATCH`] keys, consecutive in visiting order.
    pub fn batch(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let first = i.wrapping_mul(BATCH);
        (0..BATCH).map(move |j| self.index(first.wrapping_add(j)))
    }

    /// The keys of batch `i`.
    pub fn batch_keys(&self, i: usize) -> Vec<&str> {
        self.batch(i).map(|k| self.keys[k].as_str()).collect()
    }

    /// The entries of batch `i`, each with [`Workload::value`].
    pub fn batch_entries(&self, i: usize) -> Vec<(&str, Bytes)> {
        self.batch(i)
            .map(|k| (self.keys[k].as_str(), self.value.clone()))
            .collect()
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Says that a store's benchmarks are skipped and why (`kv-benches: SKIPPED ...`). Under
/// `cargo xtask bench` (which sets `KV_BENCH_NOTES` to a directory) the reason and the groups
/// are also written to `NOTES/STORE.skipped`, for the report's list of groups not measured.
pub fn skip(store: &str, reason: &str, groups: &[String]) {
    println!(
        "kv-benches: SKIPPED {store} benchmarks ({}): {reason}",
        groups.join(", ")
    );
    if let Some(dir) = std::env::var_os("KV_BENCH_NOTES") {
        let path = std::path::Path::new(&dir).join(format!("{store}.skipped"));
        let text = format!("{reason}\n{}\n", groups.join("\n"));
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
            eprintln!("kv-benches: cannot write {}: {e}", path.display());
        }
    }
}

/// The URL of a test service from its variable (`KV_TEST_REDIS_URL`, ...), or `None` after
/// [`skip`]ping the store's groups.
pub fn service_url(store: &str, var: &str, groups: &[String]) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(
                store,
                &format!(
                    "{var} is not set (start the server with `cargo xtask services up {store}`)"
                ),
                groups,
            );
            None
        }
    }
}

/// The port of a server URL `scheme://[user[:password]@]host:port[,...][/path][?query]` (of
/// its first host), to tell a test server's processes from others of the same name
/// ([`ServerProcs::cmdline`]).
///
/// ```
/// assert_eq!(kv_benches::url_port("mysql://root@127.0.0.1:13306/kv"), Some("13306"));
/// assert_eq!(kv_benches::url_port("etcd://h:1,h:2"), Some("1"));
/// assert_eq!(kv_benches::url_port("nats://localhost"), None);
/// ```
pub fn url_port(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', ',']).next()?;
    let hostport = authority.rsplit('@').next()?;
    Some(hostport.rsplit_once(':')?.1)
}

// ----- embedded stores -----

/// One contender of an embedded-store benchmark: a raw engine or a kv store. Operation `i`
/// uses the key [`Workload::key`]`(i)` (get, put) or the batch [`Workload::batch`]`(i)`.
/// Implementations pass their results through [`black_box`] and panic on errors: a benchmark
/// that measured failures would be meaningless.
pub trait Side {
    /// Reads one entry; `true` if it was found.
    fn get(&mut self, w: &Workload, i: usize) -> bool;
    /// Writes one entry (upsert, no TTL).
    fn put(&mut self, w: &Workload, i: usize);
    /// Reads the [`BATCH`] keys of batch `i` in one call.
    fn get_many(&mut self, w: &Workload, i: usize);
    /// Writes the [`BATCH`] entries of batch `i` in one call (one transaction).
    fn put_many(&mut self, w: &Workload, i: usize);
    /// Reads every entry of [`COLLECTION`] in key order; returns how many it read.
    fn scan(&mut self, w: &Workload) -> usize;
    /// False for contenders measured on single-key operations only.
    fn batches(&self) -> bool {
        true
    }
    /// False for read-only contenders: [`embedded_groups`] then never calls `put` or
    /// `put_many`, and leaves out the write groups if no contender writes.
    fn writes(&self) -> bool {
        true
    }
}

/// The group names [`embedded_groups`] creates for `store`.
pub fn embedded_group_names(store: &str) -> Vec<String> {
    ["get", "get_many_100", "scan_10000", "put", "put_many_100"]
        .iter()
        .map(|op| format!("{store}_{op}"))
        .collect()
}

/// Runs the five groups of an embedded store (`STORE_get`, `STORE_get_many_100`,
/// `STORE_scan_10000`, `STORE_put`, `STORE_put_many_100`, in that order) over `sides` (name,
/// contender). Every contender must already hold the workload's entries; this checks that each
/// finds key 0 and scans exactly the workload's key count before measuring. The reads run
/// first, while every contender's files hold just the fill: criterion runs more iterations of
/// a faster contender, so after the write groups their files would differ (LSM levels, WAL
/// length). `slow_writes`: each write waits for the disk (fewer samples for the write groups).
/// The write groups are left out when no contender writes ([`Side::writes`]).
pub fn embedded_groups(
    c: &mut Criterion,
    store: &str,
    w: &Workload,
    sides: &mut [(&str, &mut dyn Side)],
    slow_writes: bool,
) {
    for (name, side) in sides.iter_mut() {
        assert!(
            side.get(w, 0),
            "{store}/{name}: key 0 missing after the fill"
        );
        if side.batches() {
            let n = side.scan(w);
            assert_eq!(n, w.keys.len(), "{store}/{name}: scan read {n} entries");
        }
    }
    let names = embedded_group_names(store);
    // (operation, keys per call); the operations in the order of `names`.
    let ops = [(0, 1), (2, BATCH), (4, w.keys.len()), (1, 1), (3, BATCH)];
    let writes = sides.iter().any(|(_, side)| side.writes());
    for (group, (op, elements)) in names.iter().zip(ops) {
        let write = op == 1 || op == 3;
        if write && !writes {
            continue;
        }
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(elements as u64));
        let slow = op == 4 || (slow_writes && write);
        if slow {
            g.sample_size(20).sampling_mode(SamplingMode::Flat);
        }
        for (name, side) in sides.iter_mut() {
            if (op >= 2 && !side.batches()) || (write && !side.writes()) {
                continue;
            }
            let mut i = 0usize;
            let mut meter = CpuMeter::new(None);
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    meter.measure(iters, || {
                        let start = Instant::now();
                        for _ in 0..iters {
                            i = i.wrapping_add(1);
                            match op {
                                0 => {
                                    black_box(side.get(w, i));
                                }
                                1 => side.put(w, i),
                                2 => side.get_many(w, i),
                                3 => side.put_many(w, i),
                                _ => {
                                    black_box(side.scan(w));
                                }
                            }
                        }
                        start.elapsed()
                    })
                })
            });
            meter.save(group, name);
        }
        g.finish();
    }
}

/// How a [`KvSide`] drives the store's futures.
pub enum Driver {
    /// On the bench thread, parked until woken (what `store.sync()` does). Embedded stores run
    /// their work inline there.
    Park,
    /// `block_on` of a current-thread Tokio runtime: inside a runtime, embedded stores move
    /// their work to Tokio's blocking pool (one thread hand-off per operation).
    Tokio(tokio::runtime::Runtime),
}

impl Driver {
    /// A current-thread Tokio runtime driver.
    pub fn tokio() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Driver::Tokio(rt)
    }

    fn run<T>(&self, fut: impl Future<Output = kv_core::Result<T>>) -> T {
        let r = match self {
            Driver::Park => Park.block_on(fut),
            Driver::Tokio(rt) => rt.block_on(fut),
        };
        r.unwrap_or_else(|e| panic!("kv operation failed: {e}"))
    }
}

/// A kv store as a [`Side`]: the operations through [`KvStore`], driven by a [`Driver`].
pub struct KvSide<S> {
    store: S,
    driver: Driver,
    batches: bool,
}

impl<S: KvStore> KvSide<S> {
    /// All five operations, driven on the bench thread.
    pub fn new(store: S) -> Self {
        KvSide {
            store,
            driver: Driver::Park,
            batches: true,
        }
    }

    /// Single-key operations only, inside a Tokio runtime.
    pub fn in_tokio(store: S) -> Self {
        KvSide {
            store,
            driver: Driver::tokio(),
            batches: false,
        }
    }

    /// Writes the workload's entries (batches of 1 000), so every key exists.
    pub fn fill(&self, w: &Workload) {
        fill(&self.store, &self.driver, w);
    }
}

fn fill<S: KvStore + ?Sized>(store: &S, driver: &Driver, w: &Workload) {
    for chunk in w.keys.chunks(1000) {
        let entries: Vec<(&str, Bytes)> = chunk
            .iter()
            .map(|k| (k.as_str(), w.value.clone()))
            .collect();
        driver.run(store.put_many_opts(COLLECTION, &entries, PutManyOptions::default()));
    }
}

impl<S: KvStore> Side for KvSide<S> {
    fn get(&mut self, w: &Workload, i: usize) -> bool {
        let e = self.driver.run(
            self.store
                .get_opts(COLLECTION, w.key(i), GetOptions::default()),
        );
        let found = e.is_some();
        black_box(e);
        found
    }

    fn put(&mut self, w: &Workload, i: usize) {
        self.driver.run(self.store.put_opts(
            COLLECTION,
            w.key(i),
            w.value.clone(),
            PutOptions::default(),
        ));
    }

    fn get_many(&mut self, w: &Workload, i: usize) {
        let keys = w.batch_keys(i);
        black_box(
            self.driver.run(
                self.store
                    .get_many_opts(COLLECTION, &keys, GetOptions::default()),
            ),
        );
    }

    fn put_many(&mut self, w: &Workload, i: usize) {
        let entries = w.batch_entries(i);
        self.driver.run(
            self.store
                .put_many_opts(COLLECTION, &entries, PutManyOptions::default()),
        );
    }

    fn scan(&mut self, w: &Workload) -> usize {
        // One page holding the whole collection, as the baselines read it in one pass.
        let opts = ScanOptions::default().with_page_size(w.keys.len());
        let page = self.driver.run(self.store.scan_opts(COLLECTION, opts));
        let n = page.items.len();
        black_box(page);
        n
    }

    fn batches(&self) -> bool {
        self.batches
    }
}

/// The version counter of kv's engine-backed stores (LevelDB, UnQLite, RocksDB: the layout of
/// `kv::leveldb::format`), for their baselines. Every write takes consecutive versions; when a
/// write would reach the reserve stored under the meta key `next_version`, the reserve is
/// raised to the write's end plus [`VERSION_BLOCK`](kv::leveldb::format::VERSION_BLOCK), and
/// the write must store it in the same atomic batch, as the stores do.
///
/// ```
/// let mut versions = kv_benches::EngineVersions::new();
/// // The first write raises the reserve; the next ones fit below it.
/// assert_eq!(versions.allocate(3), (1, Some(4 + 1024)));
/// assert_eq!(versions.allocate(2), (4, None));
/// ```
#[derive(Debug)]
pub struct EngineVersions {
    next: u64,
    reserved: u64,
}

impl EngineVersions {
    /// The counter of an empty database: the first version is 1, nothing is reserved.
    pub fn new() -> Self {
        EngineVersions {
            next: 1,
            reserved: 1,
        }
    }

    /// Hands out `n` versions: the first, and the new reserve if the batch must write one.
    pub fn allocate(&mut self, n: u64) -> (u64, Option<u64>) {
        let first = self.next;
        self.next = first.saturating_add(n);
        if self.next > self.reserved {
            self.reserved = self.next.saturating_add(kv::leveldb::format::VERSION_BLOCK);
            (first, Some(self.reserved))
        } else {
            (first, None)
        }
    }
}

impl Default for EngineVersions {
    fn default() -> Self {
        Self::new()
    }
}

// ----- server stores -----

/// One operation of a server benchmark, shareable between concurrent tasks. `run(i)` does
/// operation `i` (key [`Workload::key`]`(i)` or batch `i`) and panics on an error.
pub trait Op: Clone + Send + Sync + 'static {
    /// Runs operation `i`.
    fn run(&self, i: usize) -> impl Future<Output = ()> + Send;
}

/// A multi-thread Tokio runtime with one worker per core, for the server benchmarks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Benchmarks `op` one call at a time (latency): each iteration is `block_on(op.run(i))` on
/// the multi-thread runtime `rt`. The CPU time of this process and of the `server` is
/// recorded per call as [`bench_tasks`] does (see [`CpuMeter`]).
pub fn bench_serial(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (group, name): (&str, &str),
    rt: &tokio::runtime::Runtime,
    server: &ServerProcs,
    op: &impl Op,
) {
    let mut i = 0usize;
    let mut meter = CpuMeter::new(Some(server));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            meter.measure(iters, || {
                let start = Instant::now();
                for _ in 0..iters {
                    i = i.wrapping_add(1);
                    rt.block_on(op.run(i));
                }
                start.elapsed()
            })
        })
    });
    meter.save(group, name);
}

/// Sums the CPU time this process — every thread: the caller's, the runtime's workers, a
/// store's worker thread — and a server's processes spent over a benchmark's samples
/// (warm-up included), and, under `cargo xtask bench`, leaves it per call in
/// `NOTES/GROUP.NAME.cpu` (`client_ns server_ns calls`).
///
/// The wall-time ratio is what a caller waits; the client CPU per call is what kv costs the
/// machine. On a small machine where client and server share the cores the wall times of
/// back-to-back runs move by 10–20 % with the load, while the CPU per call is steady: the
/// report shows both.
///
/// ```
/// let mut meter = kv_benches::CpuMeter::new(None);
/// let sum = meter.measure(1_000, || (0..1_000u64).map(std::hint::black_box).sum::<u64>());
/// assert_eq!(sum, 499_500);
/// assert_eq!(meter.calls(), 1_000);
/// ```
pub struct CpuMeter<'a> {
    server: Option<&'a ServerProcs>,
    client_ns: u64,
    server_ns: u64,
    calls: u64,
}

impl<'a> CpuMeter<'a> {
    /// A meter of this process and, if given, the server's processes.
    pub fn new(server: Option<&'a ServerProcs>) -> Self {
        CpuMeter {
            server,
            client_ns: 0,
            server_ns: 0,
            calls: 0,
        }
    }

    /// Runs `f`, which makes `calls` calls, and adds the CPU time spent meanwhile.
    pub fn measure<T>(&mut self, calls: u64, f: impl FnOnce() -> T) -> T {
        let client0 = cpu::this_process();
        let server0 = self.server.map(cpu::server);
        let out = f();
        if let (Some(a), Some(b)) = (client0, cpu::this_process()) {
            self.client_ns += b.saturating_sub(a);
        }
        if let (Some(server), Some(a)) = (self.server, server0) {
            self.server_ns += cpu::server(server).saturating_sub(a);
        }
        self.calls = self.calls.saturating_add(calls);
        out
    }

    /// The calls measured so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Writes `NOTES/GROUP.NAME.cpu` when `KV_BENCH_NOTES` is set and something was measured
    /// (a benchmark filtered out measured nothing).
    pub fn save(&self, group: &str, name: &str) {
        if self.calls == 0 {
            return;
        }
        let Some(dir) = std::env::var_os("KV_BENCH_NOTES") else {
            return;
        };
        let path = std::path::Path::new(&dir).join(format!("{group}.{name}.cpu"));
        let text = format!(
            "{} {} {}\n",
            self.client_ns / self.calls,
            self.server_ns / self.calls,
            self.calls
        );
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
            eprintln!("kv-benches: cannot write {}: {e}", path.display());
        }
    }
}

/// The processes of a test server, for CPU accounting: their `comm` name, and a text their
/// command line must contain (a port, when several servers share the name).
#[derive(Clone, Debug)]
pub struct ServerProcs {
    /// The process name (`/proc/PID/comm`): `redis-server`, `postgres`.
    pub comm: &'static str,
    /// A text the command line must contain, e.g. `:16379`.
    pub cmdline: Option<String>,
}

/// CPU time of processes from `/proc` (Linux; `None` or 0 elsewhere). Times are in clock
/// ticks of 10 ms (`USER_HZ` is 100 on every Linux architecture the benchmarks run on), so
/// they are summed over whole benchmarks, never per operation.
pub mod cpu {
    use super::ServerProcs;

    const NS_PER_TICK: u64 = 10_000_000;

    /// `utime + stime + cutime + cstime` (ns) and the state of `/proc/PID/stat`'s text.
    pub fn parse_stat(stat: &str) -> Option<(u64, char)> {
        // The name (field 2) is in parentheses and may hold spaces: split after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let state = fields.first()?.chars().next()?;
        // Fields 14..=17 of the file (utime, stime, cutime, cstime) are 11..=14 here.
        let ticks: u64 = fields
            .get(11..15)?
            .iter()
            .map(|f| f.parse::<i64>().ok().map(|t| t.max(0) as u64))
            .sum::<Option<u64>>()?;
        Some((ticks * NS_PER_TICK, state))
    }

    /// CPU time of this process (every thread, ns).
    pub fn this_process() -> Option<u64> {
        parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?).map(|(t, _)| t)
    }

    /// CPU time of a server's processes (ns), including the children they have reaped (a
    /// PostgreSQL backend's time moves to the postmaster when its connection ends).
    pub fn server(procs: &ServerProcs) -> u64 {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| {
                let path = e.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                if comm.trim_end() != procs.comm {
                    return None;
                }
                if let Some(want) = &procs.cmdline {
                    let cmdline = std::fs::read(path.join("cmdline")).ok()?;
                    if !String::from_utf8_lossy(&cmdline).contains(want.as_str()) {
                        return None;
                    }
                }
                parse_stat(&std::fs::read_to_string(path.join("stat")).ok()?).map(|(t, _)| t)
            })
            .sum()
    }
}

/// Benchmarks `op` run by `tasks` concurrent tasks on `rt` (throughput). One iteration is one
/// operation *per task*, so the group's throughput must be `Elements(tasks)`: criterion's time
/// per iteration is the wall time of `tasks` operations running side by side, and
/// `tasks / time` is the operations per second. Each task runs its share back to back, as a
/// `redis-benchmark -c N` / `pgbench -c N` client does.
///
/// It also sums the CPU time this process and the `server`'s processes spent while the tasks
/// ran (warm-up included) and, under `cargo xtask bench`, leaves it per operation in
/// `NOTES/GROUP.NAME.cpu` (`client_ns server_ns operations`) for the engine-limit table: on
/// a machine where client and server share the cores, that is where the time goes.
pub fn bench_tasks(
    g: &mut BenchmarkGroup<'_, WallTime>,
    group: &str,
    name: &str,
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    op: &impl Op,
    server: &ServerProcs,
) {
    let round = std::sync::atomic::AtomicUsize::new(0);
    let mut meter = CpuMeter::new(Some(server));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let iters = usize::try_from(iters).unwrap_or(usize::MAX);
            // A fresh stretch of keys per sample, spread over the tasks.
            let base = round
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .wrapping_mul(iters.wrapping_mul(tasks));
            let ops = (iters as u64).saturating_mul(tasks as u64);
            meter.measure(ops, || {
                rt.block_on(async {
                    let start = Instant::now();
                    let mut set = tokio::task::JoinSet::new();
                    for t in 0..tasks {
                        let op = op.clone();
                        set.spawn(async move {
                            for j in 0..iters {
                                op.run(base.wrapping_add(j.wrapping_mul(tasks)).wrapping_add(t))
                                    .await;
                            }
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        if let Err(e) = r {
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                    start.elapsed()
                })
            })
        })
    });
    meter.save(group, name);
}

/// `get` of key `i` through kv.
#[derive(Clone)]
pub struct KvGet<S> {
    /// The store.
    pub store: S,
    /// The keys.
    pub w: Arc<Workload>,
}

impl<S: KvStore + Clone + Send + Sync + 'static> Op for KvGet<S> {
    async fn run(&self, i: usize) {
        let e = self
            .store
            .get_opts(COLLECTION, self.w.key(i), GetOptions::default())
            .await
            .unwrap_or_else(|e| panic!("kv get failed: {e}"));
        assert!(e.is_some(), "kv get: key {} missing", self.w.key(i));
        black_box(e);
    }
}

/// `put` of key `i` through kv.
#[derive(Clone)]
pub struct KvPut<S> {
    /// The store.
    pub store: S,
    /// The keys and the value.
    pub w: Arc<Workload>,
}

impl<S: KvStore + Clone + Send + Sync + 'static> Op for KvPut<S> {
    async fn run(&self, i: usize) {
        self.store
            .put_opts(
                COLLECTION,
                self.w.key(i),
                self.w.value.clone(),
                PutOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("kv put failed: {e}"));
    }
}

/// `get_many` of batch `i` through kv.
#[derive(Clone)]
pub struct KvGetMany<S> {
    /// The store.
    pub store: S,
    /// The keys.
    pub w: Arc<Workload>,
}

impl<S: KvStore + Clone + Send + Sync + 'static> Op for KvGetMany<S> {
    async fn run(&self, i: usize) {
        let keys = self.w.batch_keys(i);
        let found = self
            .store
            .get_many_opts(COLLECTION, &keys, GetOptions::default())
            .await
            .unwrap_or_else(|e| panic!("kv get_many failed: {e}"));
        black_box(found);
    }
}

/// `put_many` of batch `i` through kv.
#[derive(Clone)]
pub struct KvPutMany<S> {
    /// The store.
    pub store: S,
    /// The keys and the value.
    pub w: Arc<Workload>,
}

impl<S: KvStore + Clone + Send + Sync + 'static> Op for KvPutMany<S> {
    async fn run(&self, i: usize) {
        let entries = self.w.batch_entries(i);
        self.store
            .put_many_opts(COLLECTION, &entries, PutManyOptions::default())
            .await
            .unwrap_or_else(|e| panic!("kv put_many failed: {e}"));
    }
}

/// A full scan of [`COLLECTION`] through kv: one page holding the whole collection, as the
/// baselines read it in one pass. Panics unless it reads every key of the workload.
#[derive(Clone)]
pub struct KvScan<S> {
    /// The store.
    pub store: S,
    /// The keys (their count is what the scan must read).
    pub w: Arc<Workload>,
}

impl<S: KvStore + Clone + Send + Sync + 'static> Op for KvScan<S> {
    async fn run(&self, _i: usize) {
        let opts = ScanOptions::default().with_page_size(self.w.keys.len());
        let page = self
            .store
            .scan_opts(COLLECTION, opts)
            .await
            .unwrap_or_else(|e| panic!("kv scan failed: {e}"));
        assert_eq!(page.items.len(), self.w.keys.len(), "kv scan: entries read");
        black_box(page);
    }
}

/// The name of a server store's scan group: `STORE_scan_10000` (every entry of the workload,
/// one page), as [`embedded_group_names`] names it for the embedded stores.
pub fn scan_group_name(store: &str) -> String {
    format!("{store}_scan_{ENTRIES}")
}

/// The group `STORE_OP` of a server store's single calls, each carrying `elements` keys.
pub fn serial_group<'a>(
    c: &'a mut Criterion,
    store: &str,
    op: &str,
    elements: usize,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(format!("{store}_{op}"));
    g.throughput(Throughput::Elements(elements as u64));
    g
}

/// The scan group of a server store ([`scan_group_name`]): throughput [`ENTRIES`] elements,
/// and 20 flat samples, as the embedded stores' scan groups, since one scan moves about 10 MB.
pub fn scan_group<'a>(c: &'a mut Criterion, store: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(scan_group_name(store));
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.sample_size(20).sampling_mode(SamplingMode::Flat);
    g
}

/// Runs [`bench_serial`] in `g` (named `group`) for the three contenders of a server store,
/// in this order: the raw client (`(name, op)`, the name `baseline_CLIENT`), then `kv_static`
/// and `kv_dyn`; then finishes the group.
pub fn serial_contenders<R: Op, S: Op, D: Op>(
    mut g: BenchmarkGroup<'_, WallTime>,
    group: &str,
    rt: &tokio::runtime::Runtime,
    server: &ServerProcs,
    (baseline, raw): (&str, &R),
    kv_static: &S,
    kv_dyn: &D,
) {
    bench_serial(&mut g, (group, baseline), rt, server, raw);
    bench_serial(&mut g, (group, "kv_static"), rt, server, kv_static);
    bench_serial(&mut g, (group, "kv_dyn"), rt, server, kv_dyn);
    g.finish();
}

/// The task group `STORE_OP_tasks_N` (see [`server_group_names`]): [`bench_tasks`] with
/// `tasks` tasks for the raw client (`(name, op)`), then `kv_static` and `kv_dyn`.
pub fn task_contenders<R: Op, S: Op, D: Op>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    (store, op, tasks): (&str, &str, usize),
    server: &ServerProcs,
    (baseline, raw): (&str, &R),
    kv_static: &S,
    kv_dyn: &D,
) {
    let group = format!("{store}_{op}_tasks_{tasks}");
    let mut g = c.benchmark_group(&group);
    g.throughput(Throughput::Elements(tasks as u64));
    bench_tasks(&mut g, &group, baseline, rt, tasks, raw, server);
    bench_tasks(&mut g, &group, "kv_static", rt, tasks, kv_static, server);
    bench_tasks(&mut g, &group, "kv_dyn", rt, tasks, kv_dyn, server);
    g.finish();
}

/// A server store's benchmark: what its groups share.
pub struct ServerBench<'a, S, D> {
    /// The store's name, the prefix of its groups (`redis`).
    pub store: &'a str,
    /// The raw client's benchmark name (`baseline_redis_rs`).
    pub baseline: &'a str,
    /// The server's processes, for the CPU accounting.
    pub server: ServerProcs,
    /// The store type, connected.
    pub kv_static: S,
    /// The handle `kv::open(url)` returned for the same store.
    pub kv_dyn: D,
    /// The keys and the value, already written by [`fill_async`].
    pub w: Arc<Workload>,
}

/// The raw client's operations for [`server_serial_groups`]; `scan` is `None` for a store
/// that cannot scan (its scan group is then left out), e.g. `None::<NoScan>`.
pub struct SerialOps<G, P, GM, PM, SC> {
    /// `get` of one key.
    pub get: G,
    /// `put` of one key.
    pub put: P,
    /// `get_many` of a [`BATCH`].
    pub get_many: GM,
    /// `put_many` of a [`BATCH`].
    pub put_many: PM,
    /// A scan of the whole collection.
    pub scan: Option<SC>,
}

/// The scan of a store that has none; never run.
#[derive(Clone, Copy)]
pub struct NoScan;

impl Op for NoScan {
    async fn run(&self, _i: usize) {}
}

/// The single-call groups of a server store, in this order: `STORE_get`, `STORE_put`,
/// `STORE_get_many_100`, `STORE_put_many_100` and, if `raw.scan` is given, the scan group —
/// each with the raw client, `kv_static` and `kv_dyn` ([`serial_contenders`]).
pub fn server_serial_groups<S, D, G, P, GM, PM, SC>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    b: &ServerBench<'_, S, D>,
    raw: &SerialOps<G, P, GM, PM, SC>,
) where
    S: KvStore + Clone + Send + Sync + 'static,
    D: KvStore + Clone + Send + Sync + 'static,
    G: Op,
    P: Op,
    GM: Op,
    PM: Op,
    SC: Op,
{
    let (store, base, server) = (b.store, b.baseline, &b.server);
    let w = &b.w;
    macro_rules! contenders {
        ($op:literal, $elements:expr, $kv:ident, $raw:expr) => {{
            let g = serial_group(c, store, $op, $elements);
            let s = $kv {
                store: b.kv_static.clone(),
                w: w.clone(),
            };
            let d = $kv {
                store: b.kv_dyn.clone(),
                w: w.clone(),
            };
            let group = format!("{store}_{}", $op);
            serial_contenders(g, &group, rt, server, (base, $raw), &s, &d);
        }};
    }
    contenders!("get", 1, KvGet, &raw.get);
    contenders!("put", 1, KvPut, &raw.put);
    contenders!("get_many_100", BATCH, KvGetMany, &raw.get_many);
    contenders!("put_many_100", BATCH, KvPutMany, &raw.put_many);
    if let Some(scan) = &raw.scan {
        let group = scan_group_name(store);
        let s = KvScan {
            store: b.kv_static.clone(),
            w: w.clone(),
        };
        let d = KvScan {
            store: b.kv_dyn.clone(),
            w: w.clone(),
        };
        serial_contenders(
            scan_group(c, store),
            &group,
            rt,
            server,
            (base, scan),
            &s,
            &d,
        );
    }
}

/// Every group of a server store whose raw client serves any concurrency: the single-call
/// groups ([`server_serial_groups`]), then the task groups for each of [`TASKS`] with the
/// same `get` and `put` ([`server_task_groups`]).
pub fn server_groups<S, D, G, P, GM, PM, SC>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    b: &ServerBench<'_, S, D>,
    raw: &SerialOps<G, P, GM, PM, SC>,
) where
    S: KvStore + Clone + Send + Sync + 'static,
    D: KvStore + Clone + Send + Sync + 'static,
    G: Op,
    P: Op,
    GM: Op,
    PM: Op,
    SC: Op,
{
    server_serial_groups(c, rt, b, raw);
    for tasks in TASKS {
        server_task_groups(c, rt, b, tasks, (&raw.get, &raw.put));
    }
}

/// The task groups `STORE_get_tasks_N` and `STORE_put_tasks_N` of a server store for one
/// concurrency `tasks` ([`task_contenders`]), with the raw client's `(get, put)`.
pub fn server_task_groups<S, D, G: Op, P: Op>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    b: &ServerBench<'_, S, D>,
    tasks: usize,
    (raw_get, raw_put): (&G, &P),
) where
    S: KvStore + Clone + Send + Sync + 'static,
    D: KvStore + Clone + Send + Sync + 'static,
{
    let (store, base, server, w) = (b.store, b.baseline, &b.server, &b.w);
    let s = KvGet {
        store: b.kv_static.clone(),
        w: w.clone(),
    };
    let d = KvGet {
        store: b.kv_dyn.clone(),
        w: w.clone(),
    };
    task_contenders(
        c,
        rt,
        (store, "get", tasks),
        server,
        (base, raw_get),
        &s,
        &d,
    );
    let s = KvPut {
        store: b.kv_static.clone(),
        w: w.clone(),
    };
    let d = KvPut {
        store: b.kv_dyn.clone(),
        w: w.clone(),
    };
    task_contenders(
        c,
        rt,
        (store, "put", tasks),
        server,
        (base, raw_put),
        &s,
        &d,
    );
}

/// Writes the workload's entries into a kv store (batches of 1 000) on `rt`.
pub fn fill_async<S: KvStore + ?Sized>(rt: &tokio::runtime::Runtime, store: &S, w: &Workload) {
    rt.block_on(async {
        for chunk in w.keys.chunks(1000) {
            let entries: Vec<(&str, Bytes)> = chunk
                .iter()
                .map(|k| (k.as_str(), w.value.clone()))
                .collect();
            store
                .put_many_opts(COLLECTION, &entries, PutManyOptions::default())
                .await
                .unwrap_or_else(|e| panic!("filling the store failed: {e}"));
        }
    });
}

/// The concurrency levels of the server benchmarks' task groups (`STORE_OP_tasks_N`), the
/// same `-c` that `cargo xtask bench` gives `redis-benchmark` and `pgbench`.
pub const TASKS: [usize; 2] = [1, 64];

/// The group names of a server store: single-call groups, then the task groups of `ops`.
pub fn server_group_names(store: &str, task_ops: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = ["get", "put", "get_many_100", "put_many_100"]
        .iter()
        .map(|op| format!("{store}_{op}"))
        .collect();
    for op in task_ops {
        for t in TASKS {
            names.push(format!("{store}_{op}_tasks_{t}"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_distinct_keys() {
        let w = Workload::new(ENTRIES, 8);
        let mut keys = w.batch_keys(3);
        assert_eq!(keys.len(), BATCH);
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), BATCH);
    }

    #[test]
    fn stride_is_coprime() {
        for n in [1, 2, 10, 7919, 10_000, 15_838] {
            let w = Workload::new(n, 1);
            let mut seen: Vec<usize> = (0..n).map(|i| w.index(i)).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n, "n = {n}");
        }
    }

    #[test]
    fn parses_proc_stat() {
        let stat = "1234 (tokio (worker)) S 1 2 3 4 5 6 7 8 9 10 250 50 3 2 20 0 9 0 100";
        assert_eq!(cpu::parse_stat(stat), Some((305 * 10_000_000, 'S')));
        let zombie = "9 (pgbench) Z 1 2 3 4 5 6 7 8 9 10 7 1 0 0 20 0 1 0 100";
        assert_eq!(cpu::parse_stat(zombie), Some((8 * 10_000_000, 'Z')));
        assert_eq!(cpu::parse_stat("garbage"), None);
    }

    #[test]
    fn group_names() {
        assert_eq!(embedded_group_names("lmdb")[2], "lmdb_scan_10000");
        let s = server_group_names("redis", &["get"]);
        assert_eq!(s.last().map(String::as_str), Some("redis_get_tasks_64"));
    }
}
