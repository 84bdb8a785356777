//! `cargo xtask bench-scaling [--stores a,b,...] [--quick] [--report-only]`: how each store's
//! throughput and p99 latency move with the number of concurrent tasks (1 → 256, 1 KiB
//! values) and with the value size (100 B → 1 MiB, 16 tasks), for get and put; and how much
//! memory the memory store needs per million entries, next to a plain `HashMap`.
//!
//! 1. Builds the CLI in release (`cargo build --release -p kv-cli --bin kv`).
//! 2. Per store and point, runs `kv --store URL bench --only put,get --json --duration 2
//!    --ops K --concurrency C --value-size B`: each phase lasts about 2 s (0.25 s with
//!    `--quick`) whatever the store's speed, cycling over K = 10 000 keys (fewer for large
//!    values; the first put pass over them always completes). Embedded stores get a fresh
//!    store under `target/bench-scaling/` for every point; server stores use the xtask test
//!    services (`cargo xtask services up`) and are skipped, with a note, when theirs is not
//!    running. A point that fails or hangs (interrupted after 90 s) is recorded with its
//!    error; the sweep goes on.
//! 3. For the memory store, runs the `memory_per_entry` example of kv-benches.
//! 4. Writes `docs/bench/<store>.csv` and `docs/bench/<store>.png` (bench_scaling_plot.rs)
//!    and the Scaling section of BENCHMARKS.md from every CSV in `docs/bench/`
//!    (bench_scaling_report.rs): a run of some stores keeps the others' last results.
//!    `--report-only` only redraws the plots and the section from the CSVs.
//!
//! The default stores (memory, redb, sqlite, lmdb, redis, postgres) take about 5 minutes on
//! two cores after the build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

#[path = "bench_scaling_data.rs"]
mod data;
#[path = "bench_scaling_plot.rs"]
mod plot;
#[path = "bench_scaling_report.rs"]
mod report;

use data::{
    MEMORY_FILE, MemoryRun, Sample, StoreRun, json_field, latency_text, rate_text, size_text,
};

/// Concurrency levels of the first sweep, at `SWEEP_SIZE`.
const CONCURRENCY: [u64; 5] = [1, 4, 16, 64, 256];
/// Value sizes of the second sweep, at `SWEEP_TASKS`.
const SIZES: [u64; 5] = [100, 1024, 10 * 1024, 100 * 1024, 1024 * 1024];
const SWEEP_SIZE: u64 = 1024;
const SWEEP_TASKS: u64 = 16;

const DEFAULT_STORES: &str = "memory,redb,sqlite,lmdb,redis,postgres";
const BENCHMARKS_DOC: &str = "BENCHMARKS.md";
/// The table the SQL stores use, apart from the tests' tables.
const SQL_TABLE: &str = "kv_bench_scaling";

/// Where a store lives.
enum Location {
    /// `memory://`: nothing to create.
    Memory,
    /// A file or directory the store creates, named `name` in a fresh directory.
    Path {
        scheme: &'static str,
        name: &'static str,
    },
    /// A test service: its URL is in `var` (`cargo xtask services up SERVICE`).
    Server {
        var: &'static str,
        service: &'static str,
        sql: bool,
    },
}

/// A store the sweep knows how to reach.
struct StoreSpec {
    name: &'static str,
    location: Location,
    /// The kv-cli feature that compiles it in, for the stores that link a system library.
    feature: Option<&'static str>,
}

const fn path(name: &'static str, scheme: &'static str, file: &'static str) -> StoreSpec {
    StoreSpec {
        name,
        location: Location::Path { scheme, name: file },
        feature: None,
    }
}

const fn server(
    name: &'static str,
    var: &'static str,
    service: &'static str,
    sql: bool,
) -> StoreSpec {
    StoreSpec {
        name,
        location: Location::Server { var, service, sql },
        feature: None,
    }
}

/// Every store `--stores` accepts, in the order of the report.
const STORES: &[StoreSpec] = &[
    StoreSpec {
        name: "memory",
        location: Location::Memory,
        feature: None,
    },
    path("redb", "redb", "kv.redb"),
    path("sqlite", "sqlite", "kv.sqlite"),
    path("lmdb", "lmdb", "kv.lmdb"),
    path("leveldb", "leveldb", "kv.leveldb"),
    StoreSpec {
        name: "rocksdb",
        location: Location::Path {
            scheme: "rocksdb",
            name: "kv.rocksdb",
        },
        feature: Some("rocksdb"),
    },
    path("filetree", "filetree", "tree"),
    path("log", "log", "kv.log"),
    server("redis", "KV_TEST_REDIS_URL", "redis", false),
    server("valkey", "KV_TEST_VALKEY_URL", "valkey", false),
    server("memcached", "KV_TEST_MEMCACHED_URL", "memcached", false),
    server("postgres", "KV_TEST_POSTGRES_URL", "postgres", true),
    server("mysql", "KV_TEST_MYSQL_URL", "mariadb", true),
    server("nats", "KV_TEST_NATS_URL", "nats", false),
];

/// How long points run and how many keys they use.
#[derive(Clone, Copy)]
struct Budget {
    /// Seconds each phase runs (`kv bench --duration`).
    secs: f64,
    /// Keys the operations cycle over (`kv bench --ops`) ...
    keys: u64,
    /// ... fewer for large values: at most this many bytes of them.
    max_bytes: u64,
    /// A point still running after this is stopped and recorded as failed.
    timeout: Duration,
}

impl Budget {
    const FULL: Budget = Budget {
        secs: 2.0,
        keys: 10_000,
        max_bytes: 256 * 1024 * 1024,
        timeout: Duration::from_secs(90),
    };
    const QUICK: Budget = Budget {
        secs: 0.25,
        keys: 1_000,
        max_bytes: 32 * 1024 * 1024,
        timeout: Duration::from_secs(30),
    };

    /// Keys of a point of `tasks` tasks and `size`-byte values: at least one per task.
    fn keys(&self, tasks: u64, size: u64) -> u64 {
        self.keys.min(self.max_bytes / size.max(1)).max(tasks)
    }
}

/// The command line.
struct Options {
    stores: Vec<&'static StoreSpec>,
    quick: bool,
    report_only: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut names = DEFAULT_STORES.to_owned();
    let (mut quick, mut report_only) = (false, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--stores" => {
                names = it
                    .next()
                    .cloned()
                    .ok_or("--stores needs a comma-separated list of stores")?;
            }
            "--quick" => quick = true,
            "--report-only" => report_only = true,
            "-h" | "--help" | "help" => return Ok(None),
            other => {
                return Err(format!(
                    "bench-scaling: unknown argument `{other}` (try `cargo xtask bench-scaling help`)"
                ));
            }
        }
    }
    if names == "all" {
        names = STORES.iter().map(|s| s.name).collect::<Vec<_>>().join(",");
    }
    let mut stores: Vec<&StoreSpec> = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let spec = STORES.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = STORES.iter().map(|s| s.name).collect();
            format!(
                "bench-scaling: unknown store `{name}` (known: {})",
                known.join(", ")
            )
        })?;
        if !stores.iter().any(|s| s.name == name) {
            stores.push(spec);
        }
    }
    if stores.is_empty() {
        return Err("bench-scaling: --stores lists no store".to_owned());
    }
    Ok(Some(Options {
        stores,
        quick,
        report_only,
    }))
}

fn print_help() {
    let known: Vec<&str> = STORES.iter().map(|s| s.name).collect();
    println!(
        "cargo xtask bench-scaling [--stores a,b,...] [--quick] [--report-only]\n\n\
         Throughput and p99 of get and put per store, by concurrency ({conc} tasks, 1 KiB\n\
         values) and by value size (100 B to 1 MiB, 16 tasks), with `kv bench` of the release\n\
         CLI; the memory store's footprint per million entries. Writes docs/bench/<store>.csv\n\
         and .png and the Scaling section of BENCHMARKS.md.\n\n  \
         --stores LIST   default {DEFAULT_STORES}; `all` for every known store\n                  \
         known: {known}\n                  \
         server stores need `cargo xtask services up` (skipped with a note otherwise)\n  \
         --quick         short phases (0.25 s instead of 2 s, 1 000 keys), 200 000 entries for\n                  \
         the memory footprint: a smoke test, not numbers to publish\n  \
         --report-only   redraw the plots and the section from docs/bench/*.csv",
        conc = CONCURRENCY.map(|c| c.to_string()).join(", "),
        known = known.join(", ")
    );
}

/// `cargo xtask bench-scaling ARGS`.
pub fn main(args: &[String]) -> Result<(), String> {
    let Some(opts) = parse_args(args)? else {
        print_help();
        return Ok(());
    };
    let root = workspace_root();
    let docs = root.join("docs/bench");
    fs::create_dir_all(&docs).map_err(|e| format!("cannot create {}: {e}", docs.display()))?;
    let budget = if opts.quick {
        Budget::QUICK
    } else {
        Budget::FULL
    };
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut measured: Vec<&str> = Vec::new();
    if !opts.report_only {
        let started = Instant::now();
        eprintln!("xtask: bench-scaling: uptime before: {}", uptime());
        let env = crate::services::test_env();
        let plan = crate::sysdeps::Plan::detect();
        let mut features = Vec::new();
        let mut stores = Vec::new();
        for spec in &opts.stores {
            match spec.feature {
                Some(f) if !plan.available.iter().any(|d| d.feature == f) => {
                    skip(
                        &mut skipped,
                        spec.name,
                        "this machine cannot build it (run `cargo xtask install`)".to_owned(),
                    );
                }
                Some(f) => {
                    features.push(f);
                    stores.push(*spec);
                }
                None => stores.push(*spec),
            }
        }
        let kv = build_cli(&root, &plan, &features)?;
        let machine = machine();
        let scratch = target_dir(&root).join("bench-scaling");
        for spec in stores {
            let server_url = match &spec.location {
                Location::Server { var, service, sql } => match lookup(&env, var) {
                    Some(url) => Some(if *sql {
                        with_param(&url, "table", SQL_TABLE)
                    } else {
                        url
                    }),
                    None => {
                        skip(
                            &mut skipped,
                            spec.name,
                            format!(
                                "{var} is not set: its test service is not running \
                             (`cargo xtask services up {service}`)"
                            ),
                        );
                        continue;
                    }
                },
                _ => None,
            };
            let run = sweep(
                spec,
                server_url.as_deref(),
                &kv,
                &scratch,
                budget,
                &machine,
                opts.quick,
            )?;
            run.save(&docs)?;
            measured.push(spec.name);
        }
        if opts.stores.iter().any(|s| s.name == "memory") {
            match memory_use(&root, opts.quick) {
                Ok(m) => {
                    let path = docs.join(MEMORY_FILE);
                    fs::write(&path, m.to_csv())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                }
                Err(e) => skip(&mut skipped, "memory footprint", e),
            }
        }
        let _ = fs::remove_dir_all(&scratch);
        eprintln!(
            "xtask: bench-scaling: uptime after: {} ({:.0} s)",
            uptime(),
            started.elapsed().as_secs_f64()
        );
    }
    let runs = load_runs(&docs)?;
    for run in &runs {
        if opts.report_only || measured.contains(&run.store.as_str()) {
            let png = docs.join(format!("{}.png", run.store));
            plot::render(run, &png, &CONCURRENCY, &SIZES, SWEEP_SIZE, SWEEP_TASKS)?;
            eprintln!("xtask: bench-scaling: wrote {}", png.display());
        }
    }
    let memory = match fs::read_to_string(docs.join(MEMORY_FILE)) {
        Ok(text) => Some(MemoryRun::from_csv(&text).map_err(|e| format!("{MEMORY_FILE}: {e}"))?),
        Err(_) => None,
    };
    let setup = report::Setup {
        concurrency: &CONCURRENCY,
        sizes: &SIZES,
        size: SWEEP_SIZE,
        tasks: SWEEP_TASKS,
        secs: Budget::FULL.secs,
        keys: Budget::FULL.keys,
        skipped: &skipped,
    };
    let body = report::section(&runs, memory.as_ref(), &setup);
    report::write(&root.join(BENCHMARKS_DOC), &body)?;
    eprintln!("xtask: bench-scaling: Scaling section of {BENCHMARKS_DOC} updated");
    Ok(())
}

fn skip(skipped: &mut Vec<(String, String)>, store: &str, why: String) {
    eprintln!("xtask: bench-scaling: SKIPPED {store}: {why}");
    skipped.push((store.to_owned(), why));
}

/// The results in `docs/bench/*.csv`, in the order of `STORES`.
fn load_runs(docs: &Path) -> Result<Vec<StoreRun>, String> {
    let mut runs = Vec::new();
    for spec in STORES {
        let path = docs.join(format!("{}.csv", spec.name));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        runs.push(StoreRun::from_csv(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(runs)
}

// ---------------------------------------------------------------------------------------
// The sweep

/// Runs every point of one store.
fn sweep(
    spec: &StoreSpec,
    server_url: Option<&str>,
    kv: &Path,
    scratch: &Path,
    budget: Budget,
    machine: &str,
    quick: bool,
) -> Result<StoreRun, String> {
    let load_before = load_average();
    let date = utc_now();
    // The memory store keeps references to kv bench's one value buffer: large values cost
    // it no memory, so its large-value points need not use fewer keys.
    let budget = match spec.location {
        Location::Memory => Budget {
            max_bytes: u64::MAX,
            ..budget
        },
        _ => budget,
    };
    let points = CONCURRENCY.iter().map(|&c| (c, SWEEP_SIZE)).chain(
        SIZES
            .iter()
            .filter(|&&s| s != SWEEP_SIZE)
            .map(|&s| (SWEEP_TASKS, s)),
    );
    let mut samples = Vec::new();
    for (tasks, size) in points {
        let dir = scratch.join(format!("{}-{tasks}-{size}", spec.name));
        let keys = budget.keys(tasks, size);
        let outcome = fresh_url(spec, server_url, &dir)
            .and_then(|url| run_point(kv, &url, tasks, size, keys, &budget));
        let _ = fs::remove_dir_all(&dir);
        match outcome {
            Ok(pair) => {
                eprintln!(
                    "xtask: bench-scaling: {} {tasks} tasks, {}: {}",
                    spec.name,
                    size_text(size),
                    pair.iter()
                        .map(|s| format!(
                            "{} {} ops/s p99 {}",
                            s.op,
                            rate_text(s.ops_per_sec),
                            latency_text(s.p99_us)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                samples.extend(pair);
            }
            Err(e) => {
                eprintln!(
                    "xtask: bench-scaling: {} {tasks} tasks, {}: FAILED: {e}",
                    spec.name,
                    size_text(size)
                );
                for op in ["get", "put"] {
                    samples.push(Sample {
                        op: op.to_owned(),
                        concurrency: tasks,
                        value_size: size,
                        ops: 0,
                        ops_per_sec: 0.0,
                        p50_us: 0.0,
                        p99_us: 0.0,
                        error: e.clone(),
                    });
                }
            }
        }
    }
    Ok(StoreRun {
        store: spec.name.to_owned(),
        date,
        machine: machine.to_owned(),
        load: format!("{load_before} -> {}", load_average()),
        mode: if quick { "quick" } else { "full" }.to_owned(),
        samples,
    })
}

/// The URL of a fresh store for one point: a new directory for an embedded store.
fn fresh_url(spec: &StoreSpec, server_url: Option<&str>, dir: &Path) -> Result<String, String> {
    match &spec.location {
        Location::Memory => Ok("memory://".to_owned()),
        Location::Server { var, .. } => server_url
            .map(str::to_owned)
            .ok_or_else(|| format!("{var} is not set")),
        Location::Path { scheme, name } => {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let path = dir.join(name);
            let path = path
                .to_str()
                .ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
            Ok(format!("{scheme}://{}", encode_path(path)))
        }
    }
}

/// Percent-encodes what a URL path cannot hold as is (spaces, `%`, `?`, `#`, ...).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with `name=value` added to its query, unless it already sets `name`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|p| p.split('=').next() == Some(name)) => {
            url.to_owned()
        }
        Some(_) => format!("{url}&{name}={value}"),
        None => format!("{url}?{name}={value}"),
    }
}

/// One `kv bench` run: the put and get samples.
fn run_point(
    kv: &Path,
    url: &str,
    tasks: u64,
    size: u64,
    keys: u64,
    budget: &Budget,
) -> Result<[Sample; 2], String> {
    let timeout = budget.timeout;
    let mut child = Command::new(kv)
        .args(["--store", url, "bench", "--only", "put,get", "--json"])
        .args(["--duration", &budget.secs.to_string()])
        .args(["--ops", &keys.to_string()])
        .args(["--concurrency", &tasks.to_string()])
        .args(["--value-size", &size.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", kv.display()))?;
    let deadline = Instant::now() + timeout;
    let mut interrupted = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
            Ok(None) if !interrupted => {
                // Ctrl-C: kv bench stops and removes its collection from a server store.
                let _ = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status();
                interrupted = true;
            }
            Ok(None) if Instant::now() < deadline + Duration::from_secs(15) => {
                sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                break;
            }
            Err(e) => return Err(format!("waiting for kv bench: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("reading kv bench's output: {e}"))?;
    if interrupted {
        return Err(format!("timed out after {} s", timeout.as_secs()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        let message = last.trim().trim_start_matches("kv: error: ");
        return Err(format!("kv bench: {}", truncate(message, 200)));
    }
    let find = |op: &str| {
        stdout
            .lines()
            .find(|l| json_field(l, "op") == Some(op))
            .and_then(|l| {
                Some(Sample {
                    op: op.to_owned(),
                    concurrency: tasks,
                    value_size: size,
                    ops: json_field(l, "ops")?.parse().ok()?,
                    ops_per_sec: json_field(l, "ops_per_sec")?.parse().ok()?,
                    p50_us: json_field(l, "p50_us")?.parse().ok()?,
                    p99_us: json_field(l, "p99_us")?.parse().ok()?,
                    error: String::new(),
                })
            })
            .ok_or_else(|| {
                format!(
                    "kv bench printed no {op} result: {}",
                    truncate(&stdout, 200)
                )
            })
    };
    Ok([find("get")?, find("put")?])
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Builds, memory footprint, machine

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"))
}

/// Builds the `kv` binary in release with the features of the stores asked for.
fn build_cli(
    root: &Path,
    plan: &crate::sysdeps::Plan,
    features: &[&str],
) -> Result<PathBuf, String> {
    let mut cmd = crate::cargo();
    cmd.current_dir(root)
        .args(["build", "--release", "--package", "kv-cli", "--bin", "kv"]);
    // The system libraries' environment only when a store needs one: the plain build is
    // then the same as a user's `cargo build --release -p kv-cli`.
    if !features.is_empty() {
        for (k, v) in &plan.env {
            cmd.env(k, v);
        }
        cmd.args(["--features", &features.join(",")]);
    }
    crate::run("bench-scaling: build kv", &mut cmd)?;
    let kv = target_dir(root).join("release/kv");
    if kv.is_file() {
        Ok(kv)
    } else {
        Err(format!("the build left no {}", kv.display()))
    }
}

/// Runs the `memory_per_entry` example (1 000 000 entries; 200 000 with `--quick`).
fn memory_use(root: &Path, quick: bool) -> Result<MemoryRun, String> {
    let entries = if quick { "200000" } else { "1000000" };
    let load_before = load_average();
    let mut cmd = crate::cargo();
    cmd.current_dir(root)
        .args([
            "run",
            "--release",
            "--package",
            "kv-benches",
            "--example",
            "memory_per_entry",
        ])
        .args(["--", "--json", "--entries", entries])
        .stderr(Stdio::inherit());
    eprintln!("xtask: bench-scaling: memory footprint: {cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("memory_per_entry failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let run = MemoryRun::from_json_lines(
        &text,
        utc_now(),
        format!("{load_before} -> {}", load_average()),
    )?;
    for r in &run.rows {
        eprintln!(
            "xtask: bench-scaling: {}: {:.0} bytes per entry, {:.0} MiB per million",
            r.subject, r.bytes_per_entry, r.mib_per_million
        );
    }
    Ok(run)
}

/// The 1, 5 and 15 minute load averages, as `uptime` shows them.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `uptime`'s line, or the load averages alone.
fn uptime() -> String {
    command_line("uptime", &[]).unwrap_or_else(|| format!("load average {}", load_average()))
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        .unwrap_or_else(|| "unknown date".to_owned())
}

/// The first line a command prints, if it runs.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| line.to_owned())
}

/// `2 × Intel(R) Xeon(R) ..., 24 GiB, Linux 6.8, rustc 1.95.0`.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "CPU".to_owned());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("? GiB".to_owned(), |kib| {
            format!("{:.0} GiB", kib / (1024.0 * 1024.0))
        });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned());
    let rustc = command_line("rustc", &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    format!("{cpus} × {model}, {mem_gib}, Linux {kernel}, rustc {rustc}")
}

fn lookup(env: &[(String, String)], var: &str) -> Option<String> {
    env.iter()
        .find(|(k, _)| k == var)
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var(var).ok())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments() {
        let o = parse_args(&[]).unwrap().unwrap();
        let names: Vec<&str> = o.stores.iter().map(|s| s.name).collect();
        assert_eq!(names.join(","), DEFAULT_STORES);
        assert!(!o.quick && !o.report_only);
        let o = parse_args(&args(&["--stores", "redis, memory,redis", "--quick"]))
            .unwrap()
            .unwrap();
        let names: Vec<&str> = o.stores.iter().map(|s| s.name).collect();
        assert_eq!(names, ["redis", "memory"]);
        assert!(o.quick);
        assert!(parse_args(&args(&["help"])).unwrap().is_none());
        let e = parse_args(&args(&["--stores", "redsi"])).err().unwrap();
        assert!(e.contains("redsi") && e.contains("postgres"), "{e}");
        assert!(parse_args(&args(&["--stores"])).is_err());
        assert!(parse_args(&args(&["--stores", ","])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }

    #[test]
    fn every_default_store_is_known() {
        for name in DEFAULT_STORES.split(',') {
            assert!(STORES.iter().any(|s| s.name == name), "{name}");
        }
    }

    #[test]
    fn key_counts_are_bounded_by_bytes_and_tasks() {
        let b = Budget::FULL;
        assert_eq!(b.keys(1, 1024), 10_000);
        assert_eq!(b.keys(16, 100 * 1024), 2621);
        assert_eq!(b.keys(16, 1024 * 1024), 256);
        assert_eq!(b.keys(16, 0), 10_000);
        let tiny = Budget {
            max_bytes: 1024,
            ..b
        };
        assert_eq!(tiny.keys(256, 1024), 256);
    }

    #[test]
    fn urls() {
        assert_eq!(encode_path("/a b/c%d?.redb"), "/a%20b/c%25d%3F.redb");
        assert_eq!(
            with_param("postgres://u@h/db", "table", "t"),
            "postgres://u@h/db?table=t"
        );
        assert_eq!(
            with_param("postgres://u@h/db?sslmode=disable", "table", "t"),
            "postgres://u@h/db?sslmode=disable&table=t"
        );
        assert_eq!(
            with_param("mysql://h/db?table=x", "table", "t"),
            "mysql://h/db?table=x"
        );
        let dir = std::env::temp_dir().join(format!("kv-scaling-url-{}", std::process::id()));
        let redb = STORES.iter().find(|s| s.name == "redb").unwrap();
        let url = fresh_url(redb, None, &dir).unwrap();
        assert!(
            url.starts_with("redb:///") && url.ends_with("/kv.redb"),
            "{url}"
        );
        assert!(dir.is_dir());
        fs::remove_dir_all(&dir).unwrap();
        let redis = STORES.iter().find(|s| s.name == "redis").unwrap();
        assert!(fresh_url(redis, None, &dir).is_err());
    }

    #[test]
    fn long_texts_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
