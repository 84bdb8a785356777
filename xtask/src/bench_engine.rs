//! The engines' own limits next to kv: `redis-benchmark` and `pgbench` against the same test
//! servers the criterion benchmarks used, at the same concurrency (1 and 64 clients), and
//! kv's operations per second at 1 and 64 concurrent tasks from those benchmarks'
//! `*_tasks_N` groups. Writes the table between the `engine-limit` markers of BENCHMARKS.md
//! and keeps the tools' output in `target/criterion/kv-engine/`.
//!
//! - Redis: `redis-benchmark -c C -P P -d 1024 -t get,set --dbnum 13` for C in {1, 64} and
//!   P in {1, 16} (one request per round trip, and pipelines of 16).
//! - PostgreSQL: `pgbench -n -M prepared -c C -T 5` with a script running the store's `SELECT`
//!   of one entry of the benchmark's table (`kv_bench`, filled by the postgres benchmark).
//!
//! Next to each rate, the CPU time per operation of the client process and of the server's
//! processes (from `/proc`, summed over the whole run): client and server share the machine's
//! cores, so a client that needs more CPU per operation leaves less to the server. The
//! benchmarks' `*_tasks_*` groups leave the same figures in `target/criterion/kv-notes/`.
//!
//! A tool or service that is missing is reported in the table instead of failing the run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench_report::{ops_per_sec, read_cpu, replace_section, si};

const START: &str = "<!-- engine-limit:start -->";
const END: &str = "<!-- engine-limit:end -->";

/// The concurrency levels (the benchmarks' `TASKS`).
const CLIENTS: [usize; 2] = [1, 64];
/// The database of the Redis test server the benchmarks use.
const REDIS_DB: &str = "13";
/// The table the postgres benchmark fills.
const PG_TABLE: &str = "kv_bench";
/// How long each pgbench run lasts, in seconds.
const PGBENCH_SECONDS: &str = "5";

/// Runs the tools and rewrites the engine-limit section of `doc`. `env` holds the test
/// services' variables (`services::test_env()`).
pub fn run(criterion_dir: &str, doc: &str, env: &[(String, String)]) -> Result<(), String> {
    let dir = Path::new(criterion_dir);
    let out_dir = dir.join("kv-engine");
    fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let var = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok())
            .filter(|v| !v.is_empty())
    };
    let path = var("PATH").unwrap_or_default();
    let mut body = String::new();
    body.push_str(&redis_section(
        dir,
        &out_dir,
        var("KV_TEST_REDIS_URL"),
        &path,
    ));
    body.push_str(&postgres_section(
        dir,
        &out_dir,
        var("KV_TEST_POSTGRES_URL"),
        &path,
    ));
    body.push('\n');
    replace_section(doc, START, END, &body)?;
    eprintln!("xtask: bench: engine-limit table of {doc} updated");
    print!("{body}");
    Ok(())
}

/// A program on `path` or, for PostgreSQL's tools, in its newest versioned bin directory.
fn find(name: &str, path: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::split_paths(path).collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let mut pg: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|d| {
                    let v = d.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((v, d.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    pg.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.extend(pg.into_iter().map(|(_, p)| p));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The parts of `scheme://[user[:password]@]host[:port][/path][?query]` a tool needs.
#[derive(Debug, PartialEq)]
struct Server {
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<String>,
    path: String,
}

fn parse_url(url: &str) -> Option<Server> {
    let rest = url.split_once("://")?.1;
    let rest = rest.split('?').next().unwrap_or(rest);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i + 1..].to_owned()),
        None => (rest, String::new()),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(u.to_owned()), None),
        },
        None => (None, None),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            (h.to_owned(), Some(p.to_owned()))
        }
        _ => (hostport.to_owned(), None),
    };
    Some(Server {
        user: user.filter(|u| !u.is_empty()),
        password,
        host,
        port,
        path,
    })
}

/// What a tool run printed and the CPU it and the server used.
struct ToolRun {
    stdout: String,
    /// CPU time of the tool process (ns).
    tool_ns: u64,
    /// CPU time of the server's processes meanwhile (ns).
    server_ns: u64,
}

/// `utime + stime + cutime + cstime` (ns) and the state, from the text of `/proc/PID/stat`
/// (clock ticks of 10 ms: `USER_HZ` is 100 on Linux).
fn parse_stat(stat: &str) -> Option<(u64, char)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<i64>().ok().map(|t| t.max(0) as u64))
        .sum::<Option<u64>>()?;
    Some((ticks * 10_000_000, state))
}

/// A server's processes: their name and a text their command line contains.
struct Procs {
    comm: &'static str,
    cmdline: Option<String>,
}

/// CPU time of a server's processes (ns), with the children they reaped.
fn server_cpu(procs: &Procs) -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else {
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
            let comm = fs::read_to_string(path.join("comm")).ok()?;
            if comm.trim_end() != procs.comm {
                return None;
            }
            if let Some(want) = &procs.cmdline {
                let cmdline = fs::read(path.join("cmdline")).ok()?;
                if !String::from_utf8_lossy(&cmdline).contains(want.as_str()) {
                    return None;
                }
            }
            parse_stat(&fs::read_to_string(path.join("stat")).ok()?).map(|(t, _)| t)
        })
        .sum()
}

/// Runs a tool with its output in `log` and `log.err`, measuring its CPU time (read from
/// `/proc` once it has exited and before it is reaped) and the server's; its stdout, or why
/// it failed (first line).
fn run_tool(cmd: &mut Command, log: &Path, server: &Procs) -> Result<ToolRun, String> {
    // Program and arguments only: `Command`'s Debug would also show the password variable.
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!(
        "xtask: bench: {} {}",
        cmd.get_program().to_string_lossy(),
        args.join(" ")
    );
    let err_log = log.with_extension("err");
    let open =
        |p: &Path| fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
    cmd.stdout(open(log)?).stderr(open(&err_log)?);
    let server0 = server_cpu(server);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let stat_path = format!("/proc/{}/stat", child.id());
    let mut tool_ns = 0;
    loop {
        match fs::read_to_string(&stat_path)
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            Some((t, 'Z')) => {
                tool_ns = t;
                break;
            }
            Some((t, _)) => tool_ns = t,
            None => break,
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let server_ns = server_cpu(server).saturating_sub(server0);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {:?}: {e}", cmd.get_program()))?;
    let stdout = fs::read_to_string(log).unwrap_or_default();
    let stderr = fs::read_to_string(&err_log).unwrap_or_default();
    if status.success() {
        Ok(ToolRun {
            stdout,
            tool_ns,
            server_ns,
        })
    } else {
        let why = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .to_owned();
        Err(format!("{:?} failed ({status}): {why}", cmd.get_program()))
    }
}

/// A tool's rate and CPU per operation (tool, server; ns) in one configuration.
struct Measured {
    /// The configuration: (test, clients, pipeline) for redis-benchmark, ("get", clients, 1)
    /// for pgbench.
    test: &'static str,
    clients: usize,
    pipeline: usize,
    rate: Option<f64>,
    cpu: Option<(u64, u64)>,
}

/// CPU per operation (client, server; ns) that a `*_tasks_*` benchmark left in its note.
fn bench_cpu(criterion: &Path, group: &str, bench: &str) -> Option<(u64, u64)> {
    read_cpu(criterion, group, bench, None)
}

/// `client / server` CPU per operation in µs.
fn cpu_cell(cpu: Option<(u64, u64)>) -> String {
    cpu.map_or("–".to_owned(), |(c, s)| {
        format!("{:.1} / {:.1}", c as f64 / 1_000.0, s as f64 / 1_000.0)
    })
}

/// Transactions pgbench ran (`number of transactions actually processed: N`).
fn pgbench_count(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed:"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Requests per second of `test` (`"GET"`, `"SET"`) in `redis-benchmark --csv` output.
fn redis_rps(csv: &str, test: &str) -> Option<f64> {
    let prefix = format!("\"{test}\",");
    let line = csv.lines().find(|l| l.starts_with(&prefix))?;
    line[prefix.len()..]
        .split(',')
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// `tps = N (without initial connection time)` of pgbench's output.
fn pgbench_tps(out: &str) -> Option<f64> {
    let line = out
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
        .or_else(|| out.lines().find(|l| l.starts_with("tps = ")))?;
    line["tps = ".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cell(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), si)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_owned(),
    }
}

fn redis_section(criterion: &Path, out_dir: &Path, url: Option<String>, path: &str) -> String {
    let mut s =
        String::from("\n**Redis: operations per second vs `redis-benchmark`** (1 KiB values)\n\n");
    let Some(url) = url else {
        s.push_str("Not measured: the redis test service is not running (`cargo xtask services up redis`).\n");
        return s;
    };
    let Some(server) = parse_url(&url) else {
        s.push_str("Not measured: KV_TEST_REDIS_URL is not a URL.\n");
        return s;
    };
    let Some(tool) = find("redis-benchmark", path) else {
        s.push_str("Not measured: `redis-benchmark` is not installed (it comes with the redis server: `cargo xtask services install`).\n");
        return s;
    };
    let procs = Procs {
        comm: "redis-server",
        cmdline: server.port.as_ref().map(|p| format!(":{p}")),
    };
    // (test, clients, pipeline) → (requests per second, CPU per request of tool and server).
    let mut results: Vec<Measured> = Vec::new();
    let mut failures = Vec::new();
    for test in ["get", "set"] {
        for clients in CLIENTS {
            for pipeline in [1usize, 16] {
                // About 2-5 s per run on two cores.
                let n: u64 = match (clients, pipeline) {
                    (1, 1) => 50_000,
                    (1, _) => 300_000,
                    (_, 1) => 200_000,
                    _ => 1_000_000,
                };
                let mut cmd = Command::new(&tool);
                cmd.args(["-h", &server.host])
                    .args(["-p", server.port.as_deref().unwrap_or("6379")])
                    .args(["--dbnum", REDIS_DB])
                    .args(["-c", &clients.to_string()])
                    .args(["-P", &pipeline.to_string()])
                    .args(["-n", &n.to_string()])
                    .args(["-d", "1024", "-t", test, "--csv"]);
                if let Some(p) = &server.password {
                    // Through the environment, never on a command line others can read.
                    cmd.env("REDISCLI_AUTH", p);
                }
                let log =
                    out_dir.join(format!("redis-benchmark-{test}-c{clients}-P{pipeline}.txt"));
                match run_tool(&mut cmd, &log, &procs) {
                    Ok(run) => results.push(Measured {
                        test,
                        clients,
                        pipeline,
                        rate: redis_rps(&run.stdout, &test.to_uppercase()),
                        cpu: Some((run.tool_ns / n, run.server_ns / n)),
                    }),
                    Err(e) => failures.push(e),
                }
            }
        }
    }
    let bench = |test: &str, c: usize, p: usize| {
        results
            .iter()
            .find(|r| r.test == test && r.clients == c && r.pipeline == p)
    };
    let mut cpu = String::from(
        "\nCPU per operation, µs, client / server (`redis-server`), over the whole run:\n\n\
         | operation | clients / tasks | redis-benchmark -P 1 | redis-benchmark -P 16 | redis-rs | kv static | kv dyn |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    s.push_str(
        "| operation | clients / tasks | redis-benchmark -P 1 | redis-benchmark -P 16 | redis-rs (same commands) | kv static | kv dyn | kv static ÷ redis-benchmark -P 1 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (op, test, name) in [("get", "get", "get"), ("put (SET)", "set", "put")] {
        for c in CLIENTS {
            let group = format!("redis_{name}_tasks_{c}");
            let raw = ops_per_sec(criterion, &group, "baseline_redis_rs");
            let kv_s = ops_per_sec(criterion, &group, "kv_static");
            let kv_d = ops_per_sec(criterion, &group, "kv_dyn");
            let rb1 = bench(test, c, 1);
            let rb16 = bench(test, c, 16);
            s.push_str(&format!(
                "| {op} | {c} | {} | {} | {} | {} | {} | {} |\n",
                cell(rb1.and_then(|r| r.rate)),
                cell(rb16.and_then(|r| r.rate)),
                cell(raw),
                cell(kv_s),
                cell(kv_d),
                ratio(kv_s, rb1.and_then(|r| r.rate))
            ));
            cpu.push_str(&format!(
                "| {op} | {c} | {} | {} | {} | {} | {} |\n",
                cpu_cell(rb1.and_then(|r| r.cpu)),
                cpu_cell(rb16.and_then(|r| r.cpu)),
                cpu_cell(bench_cpu(criterion, &group, "baseline_redis_rs")),
                cpu_cell(bench_cpu(criterion, &group, "kv_static")),
                cpu_cell(bench_cpu(criterion, &group, "kv_dyn")),
            ));
        }
    }
    s.push_str(&cpu);
    for f in failures {
        s.push_str(&format!("\nredis-benchmark: {f}\n"));
    }
    s
}

fn postgres_section(criterion: &Path, out_dir: &Path, url: Option<String>, path: &str) -> String {
    let mut s = String::from(
        "\n**PostgreSQL: gets per second vs `pgbench`** (the store's `SELECT` of one 1 KiB entry, prepared)\n\n",
    );
    let Some(url) = url else {
        s.push_str("Not measured: the postgres test service is not running (`cargo xtask services up postgres`).\n");
        return s;
    };
    let Some(server) = parse_url(&url) else {
        s.push_str("Not measured: KV_TEST_POSTGRES_URL is not a URL.\n");
        return s;
    };
    let Some(tool) = find("pgbench", path) else {
        s.push_str("Not measured: `pgbench` is not installed (it comes with the PostgreSQL server: `cargo xtask services install`).\n");
        return s;
    };
    // The store's get (kv_store_postgres::format), with the key drawn at random among the
    // benchmark's 10 000 keys and the clock read by the server.
    let script = format!(
        "\\set k random(0, 9999)\n\
         SELECT value, raw, expires_at, created_at, version FROM \"{PG_TABLE}\" \
         WHERE collection = 'bench' AND key = 'key-' || lpad(:k::text, 6, '0') \
         AND (expires_at IS NULL OR expires_at > now());\n"
    );
    let script_path = out_dir.join("pgbench-get.sql");
    if let Err(e) = fs::write(&script_path, script) {
        s.push_str(&format!(
            "Not measured: cannot write {}: {e}\n",
            script_path.display()
        ));
        return s;
    }
    let procs = Procs {
        comm: "postgres",
        cmdline: None,
    };
    // clients → (transactions per second, CPU per transaction of pgbench and the server).
    let mut tps: Vec<Measured> = Vec::new();
    let mut failures = Vec::new();
    for clients in CLIENTS {
        let mut cmd = Command::new(&tool);
        cmd.args(["-n", "-M", "prepared", "-T", PGBENCH_SECONDS])
            .args(["-c", &clients.to_string()])
            .args(["-j", &clients.min(2).to_string()])
            .arg("-f")
            .arg(&script_path)
            .args(["-h", &server.host])
            .args(["-p", server.port.as_deref().unwrap_or("5432")]);
        if let Some(u) = &server.user {
            cmd.args(["-U", u]);
        }
        if let Some(p) = &server.password {
            cmd.env("PGPASSWORD", p);
        }
        if !server.path.is_empty() {
            cmd.arg(&server.path);
        }
        let log = out_dir.join(format!("pgbench-c{clients}.txt"));
        match run_tool(&mut cmd, &log, &procs) {
            Ok(run) => {
                let cpu = pgbench_count(&run.stdout)
                    .filter(|n| *n > 0)
                    .map(|n| (run.tool_ns / n, run.server_ns / n));
                tps.push(Measured {
                    test: "get",
                    clients,
                    pipeline: 1,
                    rate: pgbench_tps(&run.stdout),
                    cpu,
                });
            }
            Err(e) => failures.push(e),
        }
    }
    s.push_str(
        "| operation | clients / tasks | pgbench -M prepared | tokio-postgres (same statement) | kv static | kv dyn | kv static ÷ pgbench |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut cpu = String::from(
        "\nCPU per operation, µs, client / server (every `postgres` process), over the whole run:\n\n\
         | operation | clients / tasks | pgbench | tokio-postgres | kv static | kv dyn |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for c in CLIENTS {
        let group = format!("postgres_get_tasks_{c}");
        let pg = tps.iter().find(|t| t.clients == c);
        let raw = ops_per_sec(criterion, &group, "baseline_tokio_postgres");
        let kv_s = ops_per_sec(criterion, &group, "kv_static");
        let kv_d = ops_per_sec(criterion, &group, "kv_dyn");
        s.push_str(&format!(
            "| get | {c} | {} | {} | {} | {} | {} |\n",
            cell(pg.and_then(|t| t.rate)),
            cell(raw),
            cell(kv_s),
            cell(kv_d),
            ratio(kv_s, pg.and_then(|t| t.rate))
        ));
        cpu.push_str(&format!(
            "| get | {c} | {} | {} | {} | {} |\n",
            cpu_cell(pg.and_then(|t| t.cpu)),
            cpu_cell(bench_cpu(criterion, &group, "baseline_tokio_postgres")),
            cpu_cell(bench_cpu(criterion, &group, "kv_static")),
            cpu_cell(bench_cpu(criterion, &group, "kv_dyn")),
        ));
    }
    s.push_str(&cpu);
    for f in failures {
        s.push_str(&format!("\npgbench: {f}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_urls() {
        let s = parse_url("postgres://postgres@127.0.0.1:15432/postgres?table=x").unwrap();
        assert_eq!(s.user.as_deref(), Some("postgres"));
        assert_eq!(s.password, None);
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port.as_deref(), Some("15432"));
        assert_eq!(s.path, "postgres");
        let r = parse_url("redis://:secret@localhost:16379").unwrap();
        assert_eq!(r.user, None);
        assert_eq!(r.password.as_deref(), Some("secret"));
        assert_eq!(r.port.as_deref(), Some("16379"));
        assert_eq!(r.path, "");
        assert_eq!(parse_url("redis-host").map(|s| s.host), None);
    }

    #[test]
    fn parses_proc_stat() {
        let stat = "77 (redis-server) S 1 2 3 4 5 6 7 8 9 10 120 30 4 6 20 0 4 0 1";
        assert_eq!(parse_stat(stat), Some((160 * 10_000_000, 'S')));
        assert_eq!(parse_stat("77 (x) Z 1"), None);
        assert_eq!(cpu_cell(Some((12_340, 5_600))), "12.3 / 5.6");
        assert_eq!(cpu_cell(None), "–");
    }

    #[test]
    fn parses_tool_output() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"41493.78\",\"1.2\"\n\"GET\",\"45045.04\",\"1.1\"\n";
        assert_eq!(redis_rps(csv, "GET"), Some(45045.04));
        assert_eq!(redis_rps(csv, "SET"), Some(41493.78));
        assert_eq!(redis_rps(csv, "INCR"), None);
        let pg = "number of transactions actually processed: 123\n\
                  latency average = 0.5 ms\n\
                  initial connection time = 3.2 ms\n\
                  tps = 12345.678901 (without initial connection time)\n";
        assert_eq!(pgbench_tps(pg), Some(12345.678901));
        assert_eq!(pgbench_count(pg), Some(123));
        assert_eq!(pgbench_tps("nothing"), None);
    }
}
