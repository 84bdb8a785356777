//! `cargo xtask bench [--only PARTS] [--skip PARTS] [--quick] [-- CRITERION ARGS]`: every
//! measurement of BENCHMARKS.md, regenerated in one run on this machine.
//!
//! The parts, in the order they run (each rewrites its own section of BENCHMARKS.md):
//!
//! 1. `criterion` — `cargo bench -p kv-benches`: kv (static type and `kv::open` handle)
//!    against each store's raw engine or client doing the same work; the tables of ratios
//!    (bench_report.rs). Features for RocksDB, UnQLite, DuckDB and etcd are turned on when
//!    this machine can build them (sysdeps.rs).
//! 2. `engines` — `redis-benchmark` and `pgbench` on the same servers (bench_engine.rs).
//! 3. `peers` — py-key-value-aio and spoonbill doing the same work from Python
//!    (bench_peers.rs; pip installs them into a venv).
//! 4. `scaling` — throughput and p99 by concurrency and value size for every store the
//!    sweep knows, with a PNG plot each in docs/bench/ (bench_scaling.rs).
//!
//! The server stores' test services are started first (`services up`, which leaves running
//! ones alone); a store whose service or library is missing is skipped with a note that the
//! report lists, never silently. `--quick` shortens the peers and scaling parts to a smoke
//! test (their sections are then not rewritten, or rewritten from short phases — see their
//! docs); criterion takes its own flags after `--` (`-- --measurement-time 1`).

use std::env;
use std::time::SystemTime;

use crate::{
    BENCHMARKS_DOC, CRITERION_DIR, bench_engine, bench_features, bench_peers, bench_report,
    bench_scaling, cargo, run, services, sysdeps,
};

/// A part of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Criterion,
    Engines,
    Peers,
    Scaling,
}

const PARTS: [(Part, &str); 4] = [
    (Part::Criterion, "criterion"),
    (Part::Engines, "engines"),
    (Part::Peers, "peers"),
    (Part::Scaling, "scaling"),
];

/// The command line.
#[derive(Debug, PartialEq)]
struct Options {
    parts: Vec<Part>,
    quick: bool,
    criterion_args: Vec<String>,
}

fn parse_parts(list: &str) -> Result<Vec<Part>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|name| {
            PARTS
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(p, _)| *p)
                .ok_or_else(|| {
                    let known: Vec<&str> = PARTS.iter().map(|(_, n)| *n).collect();
                    format!("bench: unknown part `{name}` (known: {})", known.join(", "))
                })
        })
        .collect()
}

impl Options {
    fn parse(args: &[String]) -> Result<Option<Options>, String> {
        let mut parts: Vec<Part> = PARTS.iter().map(|(p, _)| *p).collect();
        let mut quick = false;
        let mut criterion_args = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--only" => {
                    let list = it
                        .next()
                        .ok_or("--only needs a comma-separated list of parts")?;
                    let only = parse_parts(list)?;
                    parts.retain(|p| only.contains(p));
                }
                "--skip" => {
                    let list = it
                        .next()
                        .ok_or("--skip needs a comma-separated list of parts")?;
                    let skip = parse_parts(list)?;
                    parts.retain(|p| !skip.contains(p));
                }
                "--quick" => quick = true,
                "-h" | "--help" | "help" => return Ok(None),
                "--" => criterion_args.extend(it.by_ref().cloned()),
                other => {
                    return Err(format!(
                        "bench: unknown argument `{other}` (criterion's flags go after `--`; \
                         try `cargo xtask bench help`)"
                    ));
                }
            }
        }
        if parts.is_empty() {
            return Err("bench: --only/--skip left no part to run".to_owned());
        }
        Ok(Some(Options {
            parts,
            quick,
            criterion_args,
        }))
    }
}

fn print_help() {
    println!(
        "cargo xtask bench [--only PARTS] [--skip PARTS] [--quick] [-- CRITERION ARGS]\n\n\
         Regenerates BENCHMARKS.md: every part by default, in this order:\n  \
         criterion  kv vs each store's raw engine/client (cargo bench -p kv-benches)\n  \
         engines    redis-benchmark and pgbench on the same servers\n  \
         peers      py-key-value-aio and spoonbill doing the same work (pip, venv)\n  \
         scaling    throughput/p99 by concurrency and value size, PNGs in docs/bench/\n\n\
         --only a,b   run only these parts;  --skip a,b   run all but these\n\
         --quick      short peers and scaling phases (a smoke test, not numbers to publish)\n\
         The test services are started first (`cargo xtask services up`); a store whose\n\
         service or library is missing is skipped and listed in the report."
    );
}

/// `cargo xtask bench ARGS`.
pub fn main(args: &[String]) -> Result<(), String> {
    let Some(opts) = Options::parse(args)? else {
        print_help();
        return Ok(());
    };
    // Every part measures server stores.
    if let Err(e) = services::up(&[]) {
        // Each benchmark of a missing service says so in the report; the others still run.
        eprintln!("xtask: bench: {e}: their benchmarks are skipped");
    }
    let services = services::test_env();
    let mut failed = Vec::new();
    for part in &opts.parts {
        let (name, result) = match part {
            Part::Criterion => ("criterion", criterion(&opts.criterion_args, &services)),
            Part::Engines => (
                "engines",
                bench_engine::run(CRITERION_DIR, BENCHMARKS_DOC, &services),
            ),
            Part::Peers => {
                let args: Vec<String> = opts
                    .quick
                    .then(|| "--quick".to_owned())
                    .into_iter()
                    .collect();
                ("peers", bench_peers::run(&args, &services))
            }
            Part::Scaling => {
                let mut args = vec!["--stores".to_owned(), "all".to_owned()];
                if opts.quick {
                    args.push("--quick".to_owned());
                }
                ("scaling", bench_scaling::main(&args))
            }
        };
        // A part that fails does not stop the others: their sections are still worth having.
        if let Err(e) = result {
            eprintln!("xtask: bench: {name} FAILED: {e}");
            failed.push(format!("{name} ({e})"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("bench: parts that failed: {}", failed.join("; ")))
    }
}

/// The criterion benchmarks and their tables.
fn criterion(extra: &[String], services: &[(String, String)]) -> Result<(), String> {
    let started = SystemTime::now();
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
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "kv-benches"]);
    bench_features(&plan, &mut cmd);
    cmd.envs(services.iter().map(|(k, v)| (k, v)))
        .env("KV_BENCH_NOTES", &notes);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    run("bench", &mut cmd)?;
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
    let secs = SystemTime::now()
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
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(20_513), "2026-03-01");
    }

    #[test]
    fn every_part_by_default() {
        let o = Options::parse(&[]).unwrap().unwrap();
        assert_eq!(
            o.parts,
            [Part::Criterion, Part::Engines, Part::Peers, Part::Scaling]
        );
        assert!(!o.quick);
        assert!(o.criterion_args.is_empty());
    }

    #[test]
    fn only_skip_quick_and_criterion_args() {
        let o = Options::parse(&args(
            "--only scaling,criterion --quick -- --measurement-time 1",
        ))
        .unwrap()
        .unwrap();
        // The run order stays the fixed one, whatever order --only names.
        assert_eq!(o.parts, [Part::Criterion, Part::Scaling]);
        assert!(o.quick);
        assert_eq!(o.criterion_args, args("--measurement-time 1"));
        let o = Options::parse(&args("--skip peers")).unwrap().unwrap();
        assert_eq!(o.parts, [Part::Criterion, Part::Engines, Part::Scaling]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(Options::parse(&args("--only nope")).is_err());
        assert!(Options::parse(&args("--only")).is_err());
        assert!(Options::parse(&args("--skip criterion,engines,peers,scaling")).is_err());
        assert!(Options::parse(&args("--measurement-time 1")).is_err());
        assert!(Options::parse(&args("help")).unwrap().is_none());
    }
}
