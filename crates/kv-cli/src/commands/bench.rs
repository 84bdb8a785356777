//! `kv bench`: ops/s and latency percentiles of the selected store, per operation.
//!
//! This is a quick look at one store from the command line; the project's comparative
//! benchmarks live in `benches/`. Each operation kind runs as a phase: `--concurrency` tasks
//! share the store handle and split the phase's operations; every operation's latency is
//! measured with `Instant` around the one store call (key lists are built outside the timed
//! section), and ops/s is the phase's operation count over its wall time.
//!
//! `--only` measures a subset of the kinds (a scaling sweep wants get and put alone); a kind
//! that reads the benchmark's keys still gets them written first, by a put phase that is run
//! but not reported. `--duration` makes every phase last about as long whatever the store's
//! speed: a phase makes one pass over the keys, then cycles over them until the time is up —
//! a fixed count would make a fast phase (a disk store's get) last milliseconds when a slow
//! one (its durable put) lasts seconds.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use indicatif::ProgressBar;
use kv::{
    Bytes, Cursor, DeleteOptions, ErrorKind, GetOptions, KvStore, KvStoreExt, PutManyOptions,
    PutOptions, ScanOptions, Store,
};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Out, write_line};
use crate::cli::BenchArgs;
use crate::error::{CliError, CliResult};
use crate::progress;

/// Keys per `get_many`/`put_many` operation and per scan page.
const BATCH: usize = 100;

/// Operations a `--duration` phase runs at most: every latency is kept in memory.
const MAX_TIMED_OPS: u64 = 10_000_000;

/// The longest `--duration`, in seconds.
const MAX_DURATION_SECS: f64 = 3600.0;

/// The operation kinds, in the order they run (each needs the keys the previous wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    GetMany,
    PutMany,
    Scan,
    Delete,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Put,
        Op::Get,
        Op::GetMany,
        Op::PutMany,
        Op::Scan,
        Op::Delete,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::GetMany => "get_many",
            Op::PutMany => "put_many",
            Op::Scan => "scan",
            Op::Delete => "delete",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// True if the kind needs the keys the put phase writes (it reads or deletes them).
    fn reads_keys(self) -> bool {
        matches!(self, Op::Get | Op::GetMany | Op::Scan | Op::Delete)
    }

    /// Keys one operation touches.
    fn keys_per_op(self) -> usize {
        match self {
            Op::Put | Op::Get | Op::Delete => 1,
            Op::GetMany | Op::PutMany | Op::Scan => BATCH,
        }
    }
}

/// What every task shares.
struct Ctx {
    store: Store,
    collection: String,
    keys: Vec<String>,
    value: Bytes,
    concurrency: u64,
    /// `--duration`: how long each phase runs after its first pass over the keys.
    duration: Option<Duration>,
    /// Set on Ctrl-C: every task ends after its current operation.
    stop: AtomicBool,
}

/// One line of results.
#[derive(Serialize)]
struct Row {
    op: &'static str,
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    ops: u64,
    keys_per_op: usize,
    concurrency: u64,
    value_size: u64,
}

/// `kv bench`.
pub async fn run(store: &Store, args: BenchArgs, out: &mut Out) -> CliResult {
    let duration = args.duration.map(phase_duration).transpose()?;
    let kinds = plan(&args.only)?;
    let collection = format!("kv-bench-{}-{:08x}", std::process::id(), random_u32());
    if !args.json {
        let info = store.info();
        let amount = match args.duration {
            Some(secs) => format!("{secs} s per kind over {} keys", args.ops),
            None => format!("{} ops per kind", args.ops),
        };
        write_line(
            out,
            &format!(
                "kv bench: {} ({}), {amount}, concurrency {}, {}-byte values",
                info.kind, info.location, args.concurrency, args.value_size
            ),
        )?;
        write_line(
            out,
            &format!(
                "{:<10}{:>10}{:>14}{:>12}{:>12}",
                "op", "ops", "ops/s", "p50 µs", "p99 µs"
            ),
        )?;
    }
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        collection: collection.clone(),
        keys: (0..args.ops).map(|i| format!("key-{i:09}")).collect(),
        value: make_value(args.value_size),
        concurrency: args.concurrency,
        duration,
        stop: AtomicBool::new(false),
    });
    // Ctrl-C asks the tasks to stop after their current operation and waits for them, so no
    // write lands after the collection is cleared below (an aborted task's write could still
    // be running on the blocking pool). `biased`: the handler is installed before the
    // benchmark starts.
    let phases = run_phases(&ctx, &args, &kinds, out);
    tokio::pin!(phases);
    let outcome = tokio::select! {
        biased;
        Ok(()) = tokio::signal::ctrl_c() => {
            ctx.stop.store(true, Ordering::Relaxed);
            let _ = (&mut phases).await;
            Err(CliError::interrupted())
        }
        r = &mut phases => r,
    };
    let cleared = remove(store, &collection, &ctx.keys).await.map_err(|e| {
        CliError::kv(e).context(format_args!(
            "cannot remove the benchmark collection {collection:?}"
        ))
    });
    outcome?;
    cleared?;
    Ok(())
}

/// The phases to run, in order, each with whether it is reported: every kind without
/// `--only`; else the listed kinds, preceded by an unreported put when one of them reads
/// the keys put writes and put is not listed.
fn plan(only: &[String]) -> CliResult<Vec<(Op, bool)>> {
    if only.is_empty() {
        return Ok(Op::ALL.into_iter().map(|op| (op, true)).collect());
    }
    let mut wanted = Vec::new();
    for name in only {
        let op = Op::from_name(name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Op::ALL.into_iter().map(Op::name).collect();
            CliError::new(format!(
                "unknown operation kind {name:?} in --only (expected one of: {})",
                names.join(", ")
            ))
        })?;
        wanted.push(op);
    }
    let prefill = !wanted.contains(&Op::Put) && wanted.iter().any(|op| op.reads_keys());
    Ok(Op::ALL
        .into_iter()
        .filter_map(|op| {
            if wanted.contains(&op) {
                Some((op, true))
            } else if op == Op::Put && prefill {
                Some((op, false))
            } else {
                None
            }
        })
        .collect())
}

/// Removes what the benchmark wrote: the whole collection, or, on a store that cannot clear
/// one (memcached cannot list its keys), every key the benchmark used.
async fn remove(store: &Store, collection: &str, keys: &[String]) -> kv::Result<()> {
    match store.clear(collection).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            for chunk in keys.chunks(BATCH) {
                let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                store.delete_many(collection, &chunk).await?;
            }
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

async fn run_phases(
    ctx: &Arc<Ctx>,
    args: &BenchArgs,
    phases: &[(Op, bool)],
    out: &mut Out,
) -> CliResult {
    let cap = ctx.store.info().capability;
    for &(op, report) in phases {
        if op == Op::Scan && !cap.scan {
            continue;
        }
        let row = phase(ctx, op, args).await?;
        if ctx.stop.load(Ordering::Relaxed) {
            return Err(CliError::interrupted());
        }
        if !report {
            continue;
        }
        if args.json {
            let line = serde_json::to_string(&row)
                .map_err(|e| CliError::new(format!("cannot format results: {e}")))?;
            write_line(out, &line)?;
        } else {
            write_line(
                out,
                &format!(
                    "{:<10}{:>10}{:>14.1}{:>12.1}{:>12.1}",
                    row.op, row.ops, row.ops_per_sec, row.p50_us, row.p99_us
                ),
            )?;
        }
        // Show each row as soon as its phase ends.
        std::io::Write::flush(out).map_err(crate::error::stdout_error)?;
    }
    Ok(())
}

/// Runs one operation kind with `concurrency` tasks and measures it.
async fn phase(ctx: &Arc<Ctx>, op: Op, args: &BenchArgs) -> CliResult<Row> {
    let keys = ctx.keys.len();
    // One pass over the keys: the count without --duration, the least with it.
    let pass = keys.div_ceil(op.keys_per_op()) as u64;
    let pb = match ctx.duration {
        // The number of operations is not known in advance.
        Some(_) => ProgressBar::hidden(),
        None => progress::bar(pass, op.name()),
    };
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let limit = Limit {
        pass,
        deadline: ctx.duration.map(|d| started + d),
    };
    for task in 0..ctx.concurrency.min(pass) {
        let ctx = Arc::clone(ctx);
        let pb = pb.clone();
        tasks.spawn(async move { run_task(&ctx, op, task, limit, &pb).await });
    }
    let mut latencies = Vec::with_capacity(usize::try_from(pass).unwrap_or(0));
    while let Some(joined) = tasks.join_next().await {
        let mine = joined
            .map_err(|e| CliError::new(format!("benchmark task failed: {e}")))?
            .map_err(|e| CliError::kv(e).context(format_args!("bench {}", op.name())))?;
        latencies.extend(mine);
    }
    let wall = started.elapsed();
    pb.finish_and_clear();
    latencies.sort_unstable();
    let ops = latencies.len() as u64;
    Ok(Row {
        op: op.name(),
        ops_per_sec: round1(ops as f64 / wall.as_secs_f64().max(1e-9)),
        p50_us: round1(micros(percentile(&latencies, 0.50))),
        p99_us: round1(micros(percentile(&latencies, 0.99))),
        ops,
        keys_per_op: op.keys_per_op(),
        concurrency: args.concurrency,
        value_size: args.value_size,
    })
}

/// When a phase ends.
#[derive(Clone, Copy)]
struct Limit {
    /// Operations in one pass over the keys.
    pass: u64,
    /// `--duration`: after the first pass, go on until then (at most `MAX_TIMED_OPS`).
    deadline: Option<Instant>,
}

impl Limit {
    /// True if operation number `i` (counted over all tasks) is to run, `now` being the end
    /// of the task's previous operation.
    fn runs(&self, i: u64, now: Instant) -> bool {
        match self.deadline {
            None => i < self.pass,
            Some(deadline) => i < self.pass || (now < deadline && i < MAX_TIMED_OPS),
        }
    }
}

/// The `--duration` of a phase, checked.
fn phase_duration(secs: f64) -> CliResult<Duration> {
    if secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_SECS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(CliError::new(format!(
            "--duration must be a number of seconds above 0 and at most {MAX_DURATION_SECS}"
        )))
    }
}

/// One task's share of a phase: operations `task`, `task + C`, `task + 2C`, ..., over the
/// keys (or batches) `i % pass`.
async fn run_task(
    ctx: &Ctx,
    op: Op,
    task: u64,
    limit: Limit,
    pb: &ProgressBar,
) -> kv::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let (store, c) = (&ctx.store, ctx.collection.as_str());
    let mut i = task;
    let mut now = Instant::now();
    while limit.runs(i, now) && !ctx.stop.load(Ordering::Relaxed) {
        let at = usize::try_from(i % limit.pass.max(1)).unwrap_or(usize::MAX);
        // (start, end) of the one store call.
        let (start, end) = match op {
            Op::Put => {
                let key = &ctx.keys[at];
                let t = Instant::now();
                store
                    .put_opts(c, key, ctx.value.clone(), PutOptions::default())
                    .await?;
                (t, Instant::now())
            }
            Op::Get => {
                let t = Instant::now();
                store
                    .get_opts(c, &ctx.keys[at], GetOptions::default())
                    .await?;
                (t, Instant::now())
            }
            Op::Delete => {
                let t = Instant::now();
                store
                    .delete_opts(c, &ctx.keys[at], DeleteOptions::default())
                    .await?;
                (t, Instant::now())
            }
            Op::GetMany => {
                let batch = batch_keys(&ctx.keys, at);
                let t = Instant::now();
                store
                    .get_many_opts(c, &batch, GetOptions::default())
                    .await?;
                (t, Instant::now())
            }
            Op::PutMany => {
                let batch: Vec<(&str, Bytes)> = batch_keys(&ctx.keys, at)
                    .into_iter()
                    .map(|k| (k, ctx.value.clone()))
                    .collect();
                let t = Instant::now();
                store
                    .put_many_opts(c, &batch, PutManyOptions::default())
                    .await?;
                (t, Instant::now())
            }
            Op::Scan => {
                // Every task pages through the collection from the start, again and again.
                let opts = ScanOptions::default()
                    .with_page_size(BATCH)
                    .with_cursor(cursor.take());
                let t = Instant::now();
                let page = store.scan_opts(c, opts).await?;
                let end = Instant::now();
                cursor = page.cursor;
                (t, end)
            }
        };
        latencies.push(end - start);
        now = end;
        pb.inc(1);
        i += ctx.concurrency;
    }
    Ok(latencies)
}

/// The keys of batch number `n`.
fn batch_keys(keys: &[String], n: usize) -> Vec<&str> {
    let start = n.saturating_mul(BATCH).min(keys.len());
    let end = start.saturating_add(BATCH).min(keys.len());
    keys[start..end].iter().map(String::as_str).collect()
}

/// A value of `size` bytes that is valid JSON where possible (a string of `x`), so a
/// benchmark collection left behind by a killed run still exports as plain JSON.
fn make_value(size: u64) -> Bytes {
    let size = usize::try_from(size).unwrap_or(0);
    let mut v = vec![b'x'; size];
    match size {
        0 => {}
        1 => v[0] = b'0',
        _ => {
            v[0] = b'"';
            v[size - 1] = b'"';
        }
    }
    Bytes::from(v)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A random number for the collection name, so concurrent runs never share a collection
/// (std's hasher keys are random per process; no extra dependency needed).
fn random_u32() -> u32 {
    RandomState::new().hash_one(SystemTime::now()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&s, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&s, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&s[..1], 0.99), Duration::from_micros(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn values_are_json_of_the_asked_size() {
        for size in [2, 3, 100] {
            let v = make_value(size);
            assert_eq!(v.len() as u64, size);
            assert!(crate::json::as_json_text(&v).is_some());
        }
        assert_eq!(make_value(1), Bytes::from_static(b"0"));
        assert!(make_value(0).is_empty());
    }

    fn names(only: &[&str]) -> Vec<(&'static str, bool)> {
        let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
        plan(&only)
            .unwrap()
            .into_iter()
            .map(|(op, report)| (op.name(), report))
            .collect()
    }

    #[test]
    fn plan_runs_every_kind_without_only() {
        let all: Vec<(&str, bool)> = Op::ALL.into_iter().map(|op| (op.name(), true)).collect();
        assert_eq!(names(&[]), all);
    }

    #[test]
    fn plan_keeps_the_fixed_order_and_prefills_readers() {
        assert_eq!(names(&["get", "put"]), [("put", true), ("get", true)]);
        assert_eq!(names(&["get"]), [("put", false), ("get", true)]);
        assert_eq!(
            names(&["delete", " scan"]),
            [("put", false), ("scan", true), ("delete", true)]
        );
        // put_many writes its own keys: no pre-fill.
        assert_eq!(names(&["put_many"]), [("put_many", true)]);
        assert_eq!(names(&["put"]), [("put", true)]);
    }

    #[test]
    fn plan_rejects_unknown_kinds() {
        let err = plan(&["get".to_owned(), "gett".to_owned()]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"gett\"") && text.contains("get_many"),
            "{text}"
        );
    }

    #[test]
    fn a_count_runs_one_pass_a_duration_at_least_one() {
        let t0 = Instant::now();
        let counted = Limit {
            pass: 10,
            deadline: None,
        };
        assert!(counted.runs(9, t0) && !counted.runs(10, t0));
        let timed = Limit {
            pass: 10,
            deadline: Some(t0 + Duration::from_secs(1)),
        };
        // The first pass completes even after the deadline; then the deadline rules.
        let late = t0 + Duration::from_secs(2);
        assert!(timed.runs(9, late) && !timed.runs(10, late));
        assert!(timed.runs(10, t0) && timed.runs(MAX_TIMED_OPS - 1, t0));
        assert!(!timed.runs(MAX_TIMED_OPS, t0));
    }

    #[test]
    fn durations_are_checked() {
        assert_eq!(phase_duration(0.5).unwrap(), Duration::from_millis(500));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_DURATION_SECS + 1.0] {
            assert!(phase_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn batches_cover_every_key_once() {
        let keys: Vec<String> = (0..250).map(|i| i.to_string()).collect();
        let n = keys.len().div_ceil(BATCH);
        let all: Vec<&str> = (0..n).flat_map(|b| batch_keys(&keys, b)).collect();
        assert_eq!(all.len(), 250);
    }
}
