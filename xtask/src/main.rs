//! `cargo xtask`: the project's automation, in Rust so it runs the same everywhere.
//!
//! ```text
//! cargo xtask test     every test of the workspace (unit, conformance, CLI, doc tests)
//! cargo xtask lint     cargo fmt --check and cargo clippy --all-targets -D warnings
//! cargo xtask ci       what CI runs: lint, then test, strictly (CI=true)
//! cargo xtask bench    every benchmark of BENCHMARKS.md: criterion, engines, peers, scaling
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
        Some("bench") => bench::main(&args[1..]),
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
         bench [--only PARTS] [--skip PARTS] [--quick] [-- CRITERION ARGS]\n                \
         regenerate all of BENCHMARKS.md: starts the services, then the criterion\n                \
         benchmarks, redis-benchmark/pgbench, the Python peers and the scaling\n                \
         sweep with its plots (`cargo xtask bench help`)\n  \
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

/// The program and arguments of `cmd`, without its environment: `Command`'s `Debug` shows the
/// variables set on it, and service URLs may carry passwords.
fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    let shown = command_line(cmd);
    eprintln!("xtask: {what}: {shown}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start {shown}: {e}"))?;
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

mod bench;
mod bench_engine;
mod bench_peers;
mod bench_report;
mod bench_scaling;
mod crash;
mod services;
mod sysdeps;
