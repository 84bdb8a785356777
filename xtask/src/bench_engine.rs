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
//! A tool or service that is missing is reported in the table instead of failing the run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench_report::{ops_per_sec, replace_section, si};

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

/// Runs a tool, keeping its output in `log`; its stdout, or why it failed (first line).
fn run_tool(cmd: &mut Command, log: &Path) -> Result<String, String> {
    eprintln!("xtask: bench: {:?}", cmd.get_program());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = fs::write(log, format!("{stdout}\n--- stderr\n{stderr}"));
    if out.status.success() {
        Ok(stdout)
    } else {
        let why = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .to_owned();
        Err(format!(
            "{:?} failed ({}): {why}",
            cmd.get_program(),
            out.status
        ))
    }
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
    // (clients, pipeline) → (GET, SET) requests per second.
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for clients in CLIENTS {
        for pipeline in [1usize, 16] {
            // About 2-5 s per test on two cores.
            let n = match (clients, pipeline) {
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
                .args(["-d", "1024", "-t", "get,set", "--csv"]);
            if let Some(p) = &server.password {
                // Through the environment, never on a command line others can read.
                cmd.env("REDISCLI_AUTH", p);
            }
            let log = out_dir.join(format!("redis-benchmark-c{clients}-P{pipeline}.txt"));
            match run_tool(&mut cmd, &log) {
                Ok(csv) => results.push((
                    clients,
                    pipeline,
                    redis_rps(&csv, "GET"),
                    redis_rps(&csv, "SET"),
                )),
                Err(e) => failures.push(e),
            }
        }
    }
    let bench = |c: usize, p: usize, get: bool| {
        results
            .iter()
            .find(|r| r.0 == c && r.1 == p)
            .and_then(|r| if get { r.2 } else { r.3 })
    };
    s.push_str(
        "| operation | clients / tasks | redis-benchmark -P 1 | redis-benchmark -P 16 | redis-rs (same commands) | kv static | kv dyn | kv static ÷ redis-benchmark -P 1 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (op, get) in [("get", true), ("put (SET)", false)] {
        let name = if get { "get" } else { "put" };
        for c in CLIENTS {
            let group = format!("redis_{name}_tasks_{c}");
            let raw = ops_per_sec(criterion, &group, "baseline_redis_rs");
            let kv_s = ops_per_sec(criterion, &group, "kv_static");
            let kv_d = ops_per_sec(criterion, &group, "kv_dyn");
            let rb = bench(c, 1, get);
            s.push_str(&format!(
                "| {op} | {c} | {} | {} | {} | {} | {} | {} |\n",
                cell(rb),
                cell(bench(c, 16, get)),
                cell(raw),
                cell(kv_s),
                cell(kv_d),
                ratio(kv_s, rb)
            ));
        }
    }
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
    let mut tps = Vec::new();
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
        match run_tool(&mut cmd, &log) {
            Ok(out) => tps.push((clients, pgbench_tps(&out))),
            Err(e) => failures.push(e),
        }
    }
    s.push_str(
        "| operation | clients / tasks | pgbench -M prepared | tokio-postgres (same statement) | kv static | kv dyn | kv static ÷ pgbench |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in CLIENTS {
        let group = format!("postgres_get_tasks_{c}");
        let pg = tps.iter().find(|t| t.0 == c).and_then(|t| t.1);
        let raw = ops_per_sec(criterion, &group, "baseline_tokio_postgres");
        let kv_s = ops_per_sec(criterion, &group, "kv_static");
        let kv_d = ops_per_sec(criterion, &group, "kv_dyn");
        s.push_str(&format!(
            "| get | {c} | {} | {} | {} | {} | {} |\n",
            cell(pg),
            cell(raw),
            cell(kv_s),
            cell(kv_d),
            ratio(kv_s, pg)
        ));
    }
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
        assert_eq!(pgbench_tps("nothing"), None);
    }
}
