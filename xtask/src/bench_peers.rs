//! `cargo xtask bench-peers`: kv against the Python libraries it supersedes, doing the same
//! work on the same machine in the same run, and the ratios in BENCHMARKS.md.
//!
//! - The peers, py-key-value-aio (memory, Redis, PostgreSQL, disk) and spoonbill (memory,
//!   Redis, LMDB), are installed by pip from `benches/peers/requirements.txt` (every package
//!   pinned) into their own venv, `~/.cache/kv/peers-venv`, beside the services' venv
//!   (`~/.cache/kv/venv`) so their pins never meet the server wheels'. `KV_PYTHON` names the
//!   Python that creates it (default `python3`; py-key-value needs 3.10 or newer).
//! - `benches/peers/peers.py` does N puts, then N gets of the same keys with 100-byte values:
//!   py-key-value with 1 and 64 asyncio tasks, spoonbill (synchronous) in one loop.
//! - kv does the identical work with `kv bench --only put,get` (the release build of kv-cli)
//!   on the matching URL, at the same task count and value size. It finishes the memory
//!   store's phases in milliseconds, so kv runs several times and the median counts.
//! - For the memory store, where the benchmark loop (two clock reads and a progress count per
//!   operation) costs as much as the store, `kv bench null://` measures that loop alone, so
//!   the store's own share can be compared with the peer as well.
//! - A server store whose test service is not running (`cargo xtask services up`) is skipped
//!   and says so in the table. `redis-benchmark` at the same client counts is the engine's own
//!   limit, for reading the Redis ratios.
//!
//! The section between the `bench-peers` markers of BENCHMARKS.md is rewritten only by a full
//! run (no store filter, no `--quick`); the reading below the markers is written by hand.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const START: &str = "<!-- bench-peers:start -->";
const END: &str = "<!-- bench-peers:end -->";
/// The section that holds the markers, appended when BENCHMARKS.md has none yet.
const HEADING: &str = "## Versus the Python libraries";

const DOC: &str = "BENCHMARKS.md";
const REQUIREMENTS: &str = "benches/peers/requirements.txt";
const SCRIPT: &str = "benches/peers/peers.py";
/// Bytes of each value: kv's value is a JSON string of this length, the peers' a JSON object.
const VALUE_SIZE: u64 = 100;
/// The task counts of the async peer (and of kv beside it).
const TASKS: &[u64] = &[1, 64];

/// The Python library on the other side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    PyKeyValue,
    Spoonbill,
}

impl Peer {
    /// The PyPI distribution.
    fn dist(self) -> &'static str {
        match self {
            Peer::PyKeyValue => "py-key-value-aio",
            Peer::Spoonbill => "spoonbill-framework",
        }
    }

    /// `peers.py --peer`.
    fn arg(self) -> &'static str {
        match self {
            Peer::PyKeyValue => "py-key-value",
            Peer::Spoonbill => "spoonbill",
        }
    }

    /// The task counts it runs at: spoonbill is synchronous.
    fn tasks(self) -> &'static [u64] {
        match self {
            Peer::PyKeyValue => TASKS,
            Peer::Spoonbill => &[1],
        }
    }
}

/// The kind of store both sides use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Redis,
    Postgres,
    Disk,
    Lmdb,
}

impl Backend {
    const NAMES: &[&str] = &["memory", "redis", "postgres", "disk", "lmdb"];

    /// `peers.py --store`, and the store filter on the command line.
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
            Backend::Disk => "disk",
            Backend::Lmdb => "lmdb",
        }
    }

    /// The test service's URL variable, for server stores.
    fn service_var(self) -> Option<&'static str> {
        match self {
            Backend::Redis => Some("KV_TEST_REDIS_URL"),
            Backend::Postgres => Some("KV_TEST_POSTGRES_URL"),
            Backend::Memory | Backend::Disk | Backend::Lmdb => None,
        }
    }

    /// The goal of the performance issue, as kv ÷ peer ops/s.
    fn goal(self) -> Option<f64> {
        match self {
            Backend::Memory => Some(300.0),
            Backend::Redis => Some(10.0),
            Backend::Postgres | Backend::Disk | Backend::Lmdb => None,
        }
    }
}

/// One peer store against its kv counterpart.
struct Case {
    peer: Peer,
    backend: Backend,
    /// Operations per kind: enough for seconds of the peer's time.
    ops: u64,
    /// How often kv runs (median): it is done in milliseconds where the peer takes seconds.
    kv_runs: usize,
}

const CASES: &[Case] = &[
    Case {
        peer: Peer::PyKeyValue,
        backend: Backend::Memory,
        ops: 50_000,
        kv_runs: 5,
    },
    Case {
        peer: Peer::PyKeyValue,
        backend: Backend::Redis,
        ops: 10_000,
        kv_runs: 3,
    },
    Case {
        peer: Peer::PyKeyValue,
        backend: Backend::Postgres,
        ops: 5_000,
        kv_runs: 3,
    },
    Case {
        peer: Peer::PyKeyValue,
        backend: Backend::Disk,
        ops: 10_000,
        kv_runs: 3,
    },
    Case {
        peer: Peer::Spoonbill,
        backend: Backend::Memory,
        ops: 200_000,
        kv_runs: 5,
    },
    Case {
        peer: Peer::Spoonbill,
        backend: Backend::Redis,
        ops: 10_000,
        kv_runs: 3,
    },
    Case {
        peer: Peer::Spoonbill,
        backend: Backend::Lmdb,
        ops: 2_000,
        kv_runs: 3,
    },
];

/// One measured operation kind at one task count.
struct Row {
    op: String,
    tasks: u64,
    peer: f64,
    kv: f64,
    /// Memory cases: `kv bench` on `null://` (a store that does nothing), i.e. what the
    /// benchmark loop, its per-operation timing and the dispatch cost alone.
    harness: Option<f64>,
}

/// What came of one case.
enum Outcome {
    Measured {
        rows: Vec<Row>,
        version: String,
        kv_url: String,
    },
    Skipped(String),
}

/// The command line: `[--quick] [STORE...]`.
struct Options {
    /// A tenth of the operations, nothing written: a smoke run.
    quick: bool,
    stores: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut opts = Options {
            quick: false,
            stores: Vec::new(),
        };
        for a in args {
            match a.as_str() {
                "--quick" => opts.quick = true,
                s if Backend::NAMES.contains(&s) => opts.stores.push(s.to_owned()),
                other => {
                    return Err(format!(
                        "bench-peers: unknown argument `{other}` (expected --quick or stores among {})",
                        Backend::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(opts)
    }

    fn wants(&self, backend: Backend) -> bool {
        self.stores.is_empty() || self.stores.iter().any(|s| s == backend.name())
    }

    /// Only a full run replaces the table.
    fn writes(&self) -> bool {
        !self.quick && self.stores.is_empty()
    }

    fn ops(&self, case: &Case) -> u64 {
        if self.quick {
            (case.ops / 10).max(100)
        } else {
            case.ops
        }
    }
}

/// Everything the cases share.
struct Ctx<'a> {
    root: PathBuf,
    python: PathBuf,
    kv: PathBuf,
    /// Scratch directory for the file stores, removed afterwards.
    work: PathBuf,
    services: &'a [(String, String)],
}

impl Ctx<'_> {
    /// A test service's URL: from `target/services/env`, else the environment.
    fn service(&self, var: &str) -> Option<String> {
        self.services
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .or_else(|| env::var(var).ok())
            .filter(|v| !v.is_empty())
    }
}

/// `cargo xtask bench-peers [--quick] [STORE...]`; `services` are the test services'
/// variables (`services::test_env()`).
pub fn run(args: &[String], services: &[(String, String)]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let root = workspace_root();
    let python = ensure_venv(&root)?;
    let kv = build_kv(&root)?;
    let work = target_dir(&root).join("bench-peers");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let ctx = Ctx {
        root,
        python,
        kv,
        work,
        services,
    };

    let load_before = load();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for case in CASES.iter().filter(|c| opts.wants(c.backend)) {
        match measure(&ctx, case, opts.ops(case)) {
            Ok(outcome) => results.push((case, outcome)),
            Err(e) => {
                eprintln!("xtask: bench-peers: {e}");
                failures.push(e);
            }
        }
    }
    let engine = if opts.wants(Backend::Redis) {
        redis_engine(&ctx, opts.quick)
    } else {
        Err("not run (store filter)".to_owned())
    };
    let load_after = load();
    let _ = fs::remove_dir_all(&ctx.work);

    let body = render(&ctx, &results, &engine, &load_before, &load_after, &opts);
    print!("{body}");
    if !failures.is_empty() {
        return Err(format!(
            "bench-peers: {} case(s) failed, {DOC} left as it was: {}",
            failures.len(),
            failures.join("; ")
        ));
    }
    if opts.writes() {
        let doc = ctx.root.join(DOC);
        replace_section(&doc, &body)?;
        eprintln!("xtask: bench-peers: {} updated", doc.display());
    } else {
        eprintln!("xtask: bench-peers: partial run (--quick or a store filter): {DOC} not written");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, relative to the workspace, or `target`).
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Creates the peers' venv if needed and installs the pinned packages; its Python.
fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let home = env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or("bench-peers: HOME is not set: it locates the venv (~/.cache/kv/peers-venv)")?;
    let venv = PathBuf::from(home).join(".cache/kv/peers-venv");
    let python = venv.join("bin/python");
    if !python.is_file() {
        let base = env::var("KV_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let can = Command::new(&base)
            .args([
                "-c",
                "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !can {
            return Err(format!(
                "bench-peers: `{base}` cannot create the peers' venv: it needs Python 3.10 or \
                 newer with the venv module (Debian/Ubuntu: `apt-get install python3-venv`); \
                 KV_PYTHON names another Python"
            ));
        }
        crate::run(
            "bench-peers: venv",
            Command::new(&base).args(["-m", "venv"]).arg(&venv),
        )?;
    }
    let requirements = root.join(REQUIREMENTS);
    crate::run(
        "bench-peers: pip",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
    )
    .map_err(|e| {
        format!(
            "{e}: pip could not install the peers pinned in {REQUIREMENTS} into {} (it needs \
             PyPI; see pip's message above; removing the venv starts it afresh)",
            venv.display()
        )
    })?;
    Ok(python)
}

/// Builds the `kv` binary (release) and returns its path.
fn build_kv(root: &Path) -> Result<PathBuf, String> {
    crate::run(
        "bench-peers: build kv",
        crate::cargo()
            .current_dir(root)
            .args(["build", "--release", "--package", "kv-cli"]),
    )?;
    let kv = target_dir(root).join("release/kv");
    if kv.is_file() {
        Ok(kv)
    } else {
        Err(format!(
            "bench-peers: the build succeeded but {} is missing",
            kv.display()
        ))
    }
}

/// Runs one case: the peer, then kv at each task count.
fn measure(ctx: &Ctx, case: &Case, ops: u64) -> Result<Outcome, String> {
    let what = format!("{} {}", case.peer.dist(), case.backend.name());
    let server = match case.backend.service_var() {
        Some(var) => match ctx.service(var) {
            Some(url) => Some(url),
            None => {
                let note = format!(
                    "{var} is not set: start the server with `cargo xtask services up {}`",
                    case.backend.name()
                );
                eprintln!("xtask: bench-peers: {what}: skipped: {note}");
                return Ok(Outcome::Skipped(note));
            }
        },
        None => None,
    };
    let dir = ctx
        .work
        .join(format!("{}-{}", case.peer.arg(), case.backend.name()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let tasks = case.peer.tasks();
    let list: Vec<String> = tasks.iter().map(u64::to_string).collect();
    let mut cmd = Command::new(&ctx.python);
    cmd.current_dir(&ctx.root)
        .arg(ctx.root.join(SCRIPT))
        .args(["--peer", case.peer.arg(), "--store", case.backend.name()])
        .args(["--ops", &ops.to_string()])
        .args(["--value-size", &VALUE_SIZE.to_string()])
        .args(["--concurrency", &list.join(",")])
        .arg("--path")
        .arg(&dir);
    if let Some(url) = &server {
        cmd.args(["--url", url]);
    }
    let peer_lines = output(&what, &mut cmd)?;
    let mut version = String::new();
    let mut peer_rates = Vec::new();
    for line in peer_lines.lines().filter(|l| l.starts_with('{')) {
        let field = |k: &str| {
            json_field(line, k).ok_or_else(|| format!("{what}: no `{k}` in peers.py's {line}"))
        };
        version = field("version")?.to_owned();
        let rate = parse_f64(field("ops_per_sec")?, &what)?;
        let tasks = parse_f64(field("concurrency")?, &what)? as u64;
        peer_rates.push((field("op")?.to_owned(), tasks, rate));
    }

    let kv_url = match case.backend {
        Backend::Memory => "memory://".to_owned(),
        Backend::Redis | Backend::Postgres => server.unwrap_or_default(),
        // diskcache commits to SQLite in WAL mode with synchronous=NORMAL: no fsync per
        // write. redb's `durability=none` is the same promise.
        Backend::Disk => format!("redb://{}?durability=none", dir.join("kv.redb").display()),
        // py-lmdb, like kv's LMDB store, syncs every write transaction.
        Backend::Lmdb => format!("lmdb://{}", dir.join("kv.lmdb").display()),
    };
    let mut rows = Vec::new();
    for &t in tasks {
        let kv_rates = kv_bench(ctx, &kv_url, ops, t, case.kv_runs, &what)?;
        // Where the store costs less than the loop that measures it, the loop's own cost is
        // measured too, so the store's share can be read off.
        let harness = if case.backend == Backend::Memory {
            Some(kv_bench(ctx, "null://", ops, t, case.kv_runs, &what)?)
        } else {
            None
        };
        for op in ["put", "get"] {
            let peer = peer_rates
                .iter()
                .find(|(o, pt, _)| o == op && *pt == t)
                .map(|r| r.2)
                .ok_or_else(|| format!("{what}: peers.py printed no {op} at {t} task(s)"))?;
            let rate = |rates: &[(String, f64)]| {
                rates
                    .iter()
                    .find(|(o, _)| o == op)
                    .map(|r| r.1)
                    .ok_or_else(|| format!("{what}: kv bench printed no {op} at {t} task(s)"))
            };
            rows.push(Row {
                op: op.to_owned(),
                tasks: t,
                peer,
                kv: rate(&kv_rates)?,
                harness: harness.as_deref().map(rate).transpose()?,
            });
        }
    }
    // As shown in BENCHMARKS.md: paths relative to the workspace, no password.
    let kv_url = match case.backend {
        Backend::Disk | Backend::Lmdb => kv_url.replace(&ctx.root.display().to_string(), "."),
        _ => without_password(&kv_url),
    };
    Ok(Outcome::Measured {
        rows,
        version,
        kv_url,
    })
}

/// `kv bench` `runs` times; the median ops/s of each operation kind.
fn kv_bench(
    ctx: &Ctx,
    url: &str,
    ops: u64,
    tasks: u64,
    runs: usize,
    what: &str,
) -> Result<Vec<(String, f64)>, String> {
    let mut samples: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..runs {
        let mut cmd = Command::new(&ctx.kv);
        cmd.current_dir(&ctx.root)
            .args(["--store", url, "bench", "--json", "--only", "put,get"])
            .args(["--ops", &ops.to_string()])
            .args(["--concurrency", &tasks.to_string()])
            .args(["--value-size", &VALUE_SIZE.to_string()]);
        let out = output(&format!("kv bench ({what})"), &mut cmd)?;
        for line in out.lines().filter(|l| l.starts_with('{')) {
            let (Some(op), Some(rate)) = (json_field(line, "op"), json_field(line, "ops_per_sec"))
            else {
                return Err(format!("{what}: unexpected kv bench line {line}"));
            };
            let rate = parse_f64(rate, what)?;
            match samples.iter_mut().find(|(o, _)| o == op) {
                Some((_, v)) => v.push(rate),
                None => samples.push((op.to_owned(), vec![rate])),
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|(op, mut v)| {
            v.sort_by(f64::total_cmp);
            (op, v[v.len() / 2])
        })
        .collect())
}

/// Runs a program; its stdout. Its stderr goes to ours, so errors are seen as they come.
fn output(what: &str, cmd: &mut Command) -> Result<String, String> {
    eprintln!("xtask: bench-peers: {what}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}); its message is above",
            out.status
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{what}: output is not UTF-8"))
}

/// The value of `key` in a flat JSON object on one line, as both tools print them
/// (`"key": 1.5` or `"key":"text"`): the number's text or the string's content.
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let at = line.find(&quoted)? + quoted.len();
    let rest = line[at..].trim_start().strip_prefix(':')?.trim_start();
    match rest.strip_prefix('"') {
        Some(s) => s.split('"').next(),
        None => rest.split([',', '}']).next().map(str::trim),
    }
}

fn parse_f64(s: &str, what: &str) -> Result<f64, String> {
    s.parse()
        .map_err(|_| format!("{what}: `{s}` is not a number"))
}

/// `redis-benchmark` GET and SET at each task count against the Redis test server:
/// `(clients, get, set)` ops/s, or why it did not run.
fn redis_engine(ctx: &Ctx, quick: bool) -> Result<Vec<(u64, f64, f64)>, String> {
    let url = ctx
        .service("KV_TEST_REDIS_URL")
        .ok_or("KV_TEST_REDIS_URL is not set")?;
    let (host, port) = host_port(&url)
        .ok_or("the Redis URL has credentials or parameters this comparison does not pass on")?;
    let mut out = Vec::new();
    for &c in TASKS {
        let n = if c == 1 { 20_000 } else { 200_000 } / if quick { 10 } else { 1 };
        let mut cmd = Command::new("redis-benchmark");
        cmd.args(["-h", &host, "-p", &port])
            .args(["-c", &c.to_string(), "-n", &n.to_string()])
            .args([
                "-d",
                &VALUE_SIZE.to_string(),
                "-P",
                "1",
                "-t",
                "get,set",
                "--csv",
            ])
            // The database the engine-limit benchmark uses: one key, `key:__rand_int__`.
            .args(["--dbnum", "13"]);
        let csv = output(&format!("redis-benchmark -c {c}"), &mut cmd)
            .map_err(|e| format!("redis-benchmark did not run: {e}"))?;
        let rate = |test: &str| {
            csv.lines()
                .find(|l| l.starts_with(&format!("\"{test}\"")))
                .and_then(|l| l.split(',').nth(1))
                .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
                .ok_or(format!("redis-benchmark printed no {test} rate"))
        };
        out.push((c, rate("GET")?, rate("SET")?));
    }
    Ok(out)
}

/// `redis://host:port` (no user, password, database or parameters) as (host, port).
fn host_port(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("redis://")?.trim_end_matches('/');
    if rest.contains(['@', '/', '?']) {
        return None;
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            Some((h.to_owned(), p.to_owned()))
        }
        _ => Some((rest.to_owned(), "6379".to_owned())),
    }
}

/// The URL with the password of its user info (`user:password@`) replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `uptime`'s line (load averages included), or /proc/loadavg.
fn load() -> String {
    Command::new("uptime")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| fs::read_to_string("/proc/loadavg").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The first line a program prints for `arg`, or `unknown`.
fn version_of(program: &Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A rate with an SI suffix: `950`, `12.3 k`, `1.05 M`.
fn si(x: f64) -> String {
    if x < 1_000.0 {
        format!("{x:.0}")
    } else if x < 1_000_000.0 {
        format!("{:.1} k", x / 1_000.0)
    } else {
        format!("{:.2} M", x / 1_000_000.0)
    }
}

fn ratio(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.1}×")
    }
}

/// The section between the markers.
fn render(
    ctx: &Ctx,
    results: &[(&Case, Outcome)],
    engine: &Result<Vec<(u64, f64, f64)>, String>,
    load_before: &str,
    load_after: &str,
    opts: &Options,
) -> String {
    let mut s = String::new();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "\nRun of {date}: `cargo xtask bench-peers{}` (the servers: `cargo xtask services up \
         redis postgres`).\n",
        if opts.quick { " --quick" } else { "" }
    );
    let mut versions: Vec<String> = Vec::new();
    for (case, outcome) in results {
        if let Outcome::Measured { version, .. } = outcome {
            let v = format!("{} {version}", case.peer.dist());
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
    }
    let _ = writeln!(
        s,
        "- Versions: {} (every package pinned in `{REQUIREMENTS}`), {}; {} (release build), {}.",
        versions.join(", "),
        version_of(&ctx.python, "--version"),
        version_of(&ctx.kv, "--version"),
        version_of(Path::new("rustc"), "--version"),
    );
    let _ = writeln!(
        s,
        "- Work: N puts, then N gets of the same N keys, {VALUE_SIZE}-byte values (kv: a JSON \
         string; the peers: `{{\"v\": \"xx…\"}}`, whose JSON text is {VALUE_SIZE} bytes); ops/s \
         = N ÷ the phase's wall time. py-key-value: `asyncio.gather` of 1 or 64 tasks on the \
         default event loop; spoonbill: one synchronous loop. kv: `kv --store URL bench \
         --only put,get --ops N --concurrency C --value-size {VALUE_SIZE}`, median of 3–5 runs."
    );
    let _ = writeln!(s, "- Load (`uptime`) before: `{load_before}`");
    let _ = writeln!(s, "- Load (`uptime`) after: `{load_after}`\n");

    s.push_str(
        "| peer | store | kv URL | op | tasks | N | peer ops/s | kv ops/s | kv ÷ peer | goal | |\n\
         |---|---|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (case, outcome) in results {
        let (peer, store) = (case.peer.dist(), case.backend.name());
        match outcome {
            Outcome::Skipped(why) => {
                let _ = writeln!(
                    s,
                    "| {peer} | {store} | | | | | | | | | not measured: {why} |"
                );
            }
            Outcome::Measured { rows, kv_url, .. } => {
                for r in rows {
                    let x = r.kv / r.peer.max(f64::MIN_POSITIVE);
                    let (goal, met) = match case.backend.goal() {
                        Some(g) if x >= g => (format!("≥ {g:.0}×"), "met"),
                        Some(g) => (format!("≥ {g:.0}×"), "**not met**"),
                        None => ("—".to_owned(), ""),
                    };
                    let _ = writeln!(
                        s,
                        "| {peer} | {store} | `{kv_url}` | {} | {} | {} | {} | {} | {} | {goal} | {met} |",
                        r.op,
                        r.tasks,
                        opts.ops(case),
                        si(r.peer),
                        si(r.kv),
                        ratio(x),
                    );
                }
            }
        }
    }

    render_harness(&mut s, results);
    s.push_str(
        "\n**Redis: everyone as a share of the engine's own limit** (`redis-benchmark -P 1 -d \
         100 -t get,set`, as many clients as tasks, same server, same run)\n\n",
    );
    match engine {
        Err(why) => {
            let _ = writeln!(s, "redis-benchmark: not measured: {why}");
        }
        Ok(limits) => {
            s.push_str(
                "| clients / tasks | op | redis-benchmark | kv | py-key-value-aio | spoonbill |\n\
                 |---:|---|---:|---:|---:|---:|\n",
            );
            for &(c, get, set) in limits {
                for (op, limit) in [("get", get), ("put (SET)", set)] {
                    let op_name = op.split(' ').next().unwrap_or(op);
                    let share = |peer: Option<Peer>| {
                        redis_rate(results, peer, op_name, c).map_or("—".to_owned(), |r| {
                            format!("{} ({:.0} %)", si(r), 100.0 * r / limit)
                        })
                    };
                    let _ = writeln!(
                        s,
                        "| {c} | {op} | {} | {} | {} | {} |",
                        si(limit),
                        share(None),
                        share(Some(Peer::PyKeyValue)),
                        share(Some(Peer::Spoonbill)),
                    );
                }
            }
        }
    }
    s.push('\n');
    s
}

/// The memory rows again, in nanoseconds per operation, with the cost of `kv bench`'s own
/// loop (measured on `null://`) taken out: the memory store's share against the peer's.
fn render_harness(s: &mut String, results: &[(&Case, Outcome)]) {
    let rows: Vec<(&Case, &Row, f64)> = results
        .iter()
        .filter_map(|(c, o)| match o {
            Outcome::Measured { rows, .. } => Some((c, rows)),
            Outcome::Skipped(_) => None,
        })
        .flat_map(|(c, rows)| rows.iter().filter_map(move |r| Some((*c, r, r.harness?))))
        .collect();
    if rows.is_empty() {
        return;
    }
    s.push_str(
        "\n**Memory: the store's own time, without the benchmark loop** (ns per operation; \
         `kv bench` on `null://`, a store that does nothing, is the loop: two clock reads and a \
         progress count per operation, the task, the dyn dispatch)\n\n\
         | peer | op | tasks | kv bench `memory://` | kv bench `null://` | memory store alone | \
         peer | store alone ÷ peer | goal | |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (case, r, null) in rows {
        let ns = |rate: f64| 1e9 / rate.max(f64::MIN_POSITIVE);
        let alone = ns(r.kv) - ns(null);
        let (alone_text, x) = if alone > 0.0 {
            (format!("{alone:.0}"), Some(ns(r.peer) / alone))
        } else {
            ("below the noise".to_owned(), None)
        };
        let goal = case.backend.goal().unwrap_or(0.0);
        let met = match x {
            Some(x) if x >= goal => "met",
            Some(_) => "**not met**",
            None => "",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {:.0} | {alone_text} | {:.0} | {} | ≥ {goal:.0}× | {met} |",
            case.peer.dist(),
            r.op,
            r.tasks,
            ns(r.kv),
            ns(null),
            ns(r.peer),
            x.map_or("—".to_owned(), ratio),
        );
    }
}

/// A Redis rate from the results: a peer's, or kv's (`None`; from the py-key-value case,
/// else the spoonbill case).
fn redis_rate(
    results: &[(&Case, Outcome)],
    peer: Option<Peer>,
    op: &str,
    tasks: u64,
) -> Option<f64> {
    results
        .iter()
        .filter(|(c, _)| c.backend == Backend::Redis && peer.is_none_or(|p| c.peer == p))
        .find_map(|(_, o)| match o {
            Outcome::Measured { rows, .. } => rows
                .iter()
                .find(|r| r.op == op && r.tasks == tasks)
                .map(|r| if peer.is_some() { r.peer } else { r.kv }),
            Outcome::Skipped(_) => None,
        })
}

/// Rewrites the text between the markers of `doc`, appending the section with its markers
/// when the file has none yet. The rest of the file is left byte for byte.
fn replace_section(doc: &Path, body: &str) -> Result<(), String> {
    let text =
        fs::read_to_string(doc).map_err(|e| format!("cannot read {}: {e}", doc.display()))?;
    let updated = splice(&text, body).map_err(|e| format!("{}: {e}", doc.display()))?;
    fs::write(doc, updated).map_err(|e| format!("cannot write {}: {e}", doc.display()))
}

fn splice(text: &str, body: &str) -> Result<String, String> {
    match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if a < b => Ok(format!("{}{START}\n{body}{}", &text[..a], &text[b..])),
        (None, None) => {
            let sep = if text.ends_with('\n') { "\n" } else { "\n\n" };
            Ok(format!("{text}{sep}{HEADING}\n\n{START}\n{body}{END}\n"))
        }
        _ => Err(format!(
            "the {START} … {END} markers are missing one or out of order"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_both_tools_lines() {
        let py =
            r#"{"peer": "spoonbill", "version": "0.1.1", "op": "get", "ops_per_sec": 1151746.4}"#;
        assert_eq!(json_field(py, "version"), Some("0.1.1"));
        assert_eq!(json_field(py, "ops_per_sec"), Some("1151746.4"));
        let kv = r#"{"op":"put","ops_per_sec":2553.0,"p50_us":1.5,"concurrency":64}"#;
        assert_eq!(json_field(kv, "op"), Some("put"));
        assert_eq!(json_field(kv, "concurrency"), Some("64"));
        assert_eq!(json_field(kv, "missing"), None);
    }

    #[test]
    fn splices_between_markers_or_appends_the_section() {
        let doc = format!("# B\n\nbefore\n{START}\nold\n{END}\nafter\n");
        let out = splice(&doc, "new\n").unwrap();
        assert_eq!(out, format!("# B\n\nbefore\n{START}\nnew\n{END}\nafter\n"));
        let out = splice("# B\n", "new\n").unwrap();
        assert_eq!(out, format!("# B\n\n{HEADING}\n\n{START}\nnew\n{END}\n"));
        assert!(splice(&format!("{END}\n{START}\n"), "x").is_err());
        assert!(splice(&format!("{START}\n"), "x").is_err());
    }

    #[test]
    fn redis_urls_without_credentials_give_host_and_port() {
        assert_eq!(
            host_port("redis://127.0.0.1:16379"),
            Some(("127.0.0.1".to_owned(), "16379".to_owned()))
        );
        assert_eq!(
            host_port("redis://cache/"),
            Some(("cache".to_owned(), "6379".to_owned()))
        );
        assert_eq!(host_port("redis://u:p@h:1"), None);
        assert_eq!(host_port("rediss://h:1"), None);
    }

    #[test]
    fn shown_urls_hide_passwords() {
        assert_eq!(
            without_password("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(without_password("redis://h:1"), "redis://h:1");
        assert_eq!(without_password("memory://"), "memory://");
    }

    #[test]
    fn options_filter_stores_and_reject_the_unknown() {
        let o = Options::parse(&["redis".to_owned(), "--quick".to_owned()]).unwrap();
        assert!(o.quick && o.wants(Backend::Redis) && !o.wants(Backend::Memory) && !o.writes());
        assert!(Options::parse(&[]).unwrap().writes());
        assert!(Options::parse(&["mongo".to_owned()]).is_err());
    }
}
