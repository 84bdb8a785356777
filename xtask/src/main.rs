//! `cargo xtask`: the project's automation, in Rust so it runs the same everywhere.
//!
//! ```text
//! cargo xtask test     every test of the workspace (unit, conformance, CLI, doc tests)
//! cargo xtask lint     cargo fmt --check and cargo clippy --all-targets -D warnings
//! cargo xtask ci       what CI runs: lint, then test, strictly (CI=true)
//! cargo xtask bench    the criterion benchmarks and the engines' own tools (BENCHMARKS.md)
//! cargo xtask bench-peers  kv against its Python peers, same work (BENCHMARKS.md)
//! cargo xtask crash    SIGKILL crash test of a durable store (RELIABILITY.md)
//! cargo xtask services install | up | down | status | env   the test servers (services.rs)
//! ```
//!
//! Under `CI=true` a conformance case skipped because a *service* is missing fails the run
//! (later issues add services); capability skips stay skips, named in each summary.

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("lint") => lint(),
        Some("ci") => lint()
            .and_then(|()| services::prepare_ci())
            .and_then(|()| test(&args[1..])),
        Some("bench") => bench(&args[1..]),
        Some("bench-report") => bench_report::update(CRITERION_DIR, BENCHMARKS_DOC, None),
        Some("bench-engines") => {
            bench_engine::run(CRITERION_DIR, BENCHMARKS_DOC, &services::test_env())
        }
        Some("bench-peers") => bench_peers::run(&args[1..], &services::test_env()),
        Some("bench-scaling") => bench_scaling::main(&args[1..]),
        Some("crash") => crash::main(&args[1..]),
        Some("install") => sysdeps::install(),
        Some("services") => services::main(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown xtask command `{other}` (try `cargo xtask help`)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <command>\n\n\
         commands:\n  \
         test [ARGS]   run every test of the workspace (ARGS go to the test binaries)\n  \
         lint          cargo fmt --check + cargo clippy --all-targets -- -D warnings\n  \
         ci            lint, then test (strict under CI=true, where it first runs\n                \
         `services install` and `services up`)\n  \
         install       install the system libraries of the rocksdb, unqlite and duckdb\n                \
         stores (apt-get; libduckdb from the npm registry)\n  \
         bench [ARGS]  run the criterion benchmarks (ARGS go to criterion; the server\n                \
         stores' need `services up`), then redis-benchmark and pgbench against\n                \
         the same servers, and rewrite the tables of BENCHMARKS.md\n  \
         bench-report  only rewrite BENCHMARKS.md from the last results in target/criterion\n  \
         bench-engines only run redis-benchmark and pgbench and rewrite their table\n  \
         bench-peers [--quick] [STORE...]\n                \
         kv against py-key-value-aio and spoonbill doing the same work (pip\n                \
         installs them into a venv); rewrites their table of BENCHMARKS.md\n  \
         bench-scaling [--stores a,b] [--quick] [--report-only]\n                \
         throughput and p99 by concurrency and value size per store, PNG plots in\n                \
         docs/bench/, its section of BENCHMARKS.md (`cargo xtask bench-scaling help`)\n  \
         crash STORE|all [--rounds N] [--seed S] [--keep]\n                \
         kill a writer with SIGKILL at random moments, reopen, check every\n                \
         acknowledged write (RELIABILITY.md); --self-test [STORE] checks the checker\n  \
         services install | up [NAMES] | down [NAMES] | status | env\n                \
         the real servers the server-store tests use, as local processes on\n                \
         127.0.0.1 (`cargo xtask services help` lists them, ports, variables);\n                \
         `test` passes the variables of the running ones (target/services/env)\n"
    );
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: {what}: {cmd:?}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start {cmd:?}: {e}"))?;
    eprintln!("xtask: {what}: {:?} in {:.1?}", status, started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// True under `CI=true`: what is skipped locally fails there.
fn strict() -> bool {
    env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The packages whose `rocksdb`/`unqlite`/`duckdb` features compile those stores into the
/// facade users (the CLI and the cross-crate tests).
const FACADE_USERS: &[&str] = &["kv-cli", "kv-tests"];

/// ... and the benchmarks, for the commands that build every target (clippy, doc).
const LINTED_USERS: &[&str] = &["kv-cli", "kv-tests", "kv-benches"];

fn test(extra: &[String]) -> Result<(), String> {
    let plan = sysdeps::Plan::detect();
    plan.report()?;
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--workspace",
        "--exclude",
        "kv-benches",
        "--exclude",
        "xtask",
    ]);
    plan.apply(&mut cmd, FACADE_USERS);
    cmd.envs(services::test_env());
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    run("test", &mut cmd)?;
    // The benchmarks must keep compiling even when nobody runs them.
    let mut build = cargo();
    build.args(["build", "--package", "kv-benches", "--benches"]);
    bench_features(&plan, &mut build);
    run("bench build", &mut build)
}

fn lint() -> Result<(), String> {
    let plan = sysdeps::Plan::detect();
    plan.report()?;
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets"]);
    plan.apply(&mut clippy, LINTED_USERS);
    clippy.args(["--", "-D", "warnings"]);
    run("clippy", &mut clippy)?;
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--exclude", "xtask"])
        .env("RUSTDOCFLAGS", "-D warnings");
    plan.apply(&mut doc, LINTED_USERS);
    run("doc", &mut doc)
}

const CRITERION_DIR: &str = "target/criterion";
const BENCHMARKS_DOC: &str = "BENCHMARKS.md";

/// The environment and features of kv-benches for what this machine can build: its RocksDB,
/// UnQLite, DuckDB and etcd benchmarks need system libraries or tools, like their stores.
fn bench_features(plan: &sysdeps::Plan, cmd: &mut Command) {
    plan.apply_to_package(cmd, "kv-benches");
}

fn bench(extra: &[String]) -> Result<(), String> {
    let started = std::time::SystemTime::now();
    let load_before = load_average();
    // The benchmarks leave a note for each store they skip (a service not running, a
    // library missing); only this run's notes count.
    let notes = env::current_dir()
        .map_err(|e| format!("bench: no current directory: {e}"))?
        .join(CRITERION_DIR)
        .join(bench_report::NOTES_DIR);
    let _ = std::fs::remove_dir_all(&notes);
    std::fs::create_dir_all(&notes)
        .map_err(|e| format!("bench: cannot create {}: {e}", notes.display()))?;
    let plan = sysdeps::Plan::detect();
    let services = services::test_env();
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "kv-benches"]);
    bench_features(&plan, &mut cmd);
    cmd.envs(services.iter().map(|(k, v)| (k, v)))
        .env("KV_BENCH_NOTES", &notes);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    run("bench", &mut cmd)?;
    bench_engine::run(CRITERION_DIR, BENCHMARKS_DOC, &services)?;
    let info = bench_report::Run {
        started,
        load_before,
        load_after: load_average(),
        date: today(),
    };
    info.save(CRITERION_DIR)?;
    bench_report::update(CRITERION_DIR, BENCHMARKS_DOC, Some(&info))
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or `unknown`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Today's date, `YYYY-MM-DD` (UTC), from the system clock.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs / 86_400)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod bench_date_tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_date(0), "1970-01-01");
        assert_eq!(super::civil_date(19_723), "2024-01-01");
        assert_eq!(super::civil_date(20_513), "2026-03-01");
    }
}

mod bench_engine;
mod bench_peers;
mod bench_report;
mod bench_scaling;
mod crash;
mod services;
mod sysdeps;
