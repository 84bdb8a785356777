//! The "Scaling" section of BENCHMARKS.md, between `<!-- bench-scaling:start -->` and
//! `<!-- bench-scaling:end -->`: how it was measured, then per store its plot and two tables
//! (by concurrency, by value size), then the memory store's footprint per entry. The rest of
//! the file is left alone; without the markers the section is appended at the end.

use std::fs;
use std::path::Path;

use crate::bench_scaling::data::{MemoryRun, StoreRun, latency_text, rate_text, size_text};

/// The store whose values are never copied.
const MEMORY: &str = "memory";

pub const START: &str = "<!-- bench-scaling:start -->";
pub const END: &str = "<!-- bench-scaling:end -->";

/// What the section says about the sweep besides the results.
pub struct Setup<'a> {
    /// The concurrency levels of the first sweep, at `size`.
    pub concurrency: &'a [u64],
    /// The value sizes of the second sweep, at `tasks`.
    pub sizes: &'a [u64],
    pub size: u64,
    pub tasks: u64,
    /// How long each phase of a point runs, in seconds.
    pub secs: f64,
    /// Keys the operations of a point cycle over (fewer for large values).
    pub keys: u64,
    /// Stores asked for in this run that could not be measured, with the reason.
    pub skipped: &'a [(String, String)],
}

/// The section's text (without the markers).
pub fn section(runs: &[StoreRun], memory: Option<&MemoryRun>, setup: &Setup<'_>) -> String {
    let mut s = String::new();
    let stores: Vec<&str> = runs.iter().map(|r| r.store.as_str()).collect();
    let list =
        |v: &[u64], f: fn(u64) -> String| v.iter().map(|&x| f(x)).collect::<Vec<_>>().join(", ");
    let command = if stores.is_empty() {
        "memory".to_owned()
    } else {
        stores.join(",")
    };
    s.push_str(&format!(
        "## Scaling\n\n\
         How throughput and latency move with the number of concurrent tasks ({conc}; {size} \
         values) and with the value size ({sizes}; {tasks} tasks), for get and put, per store. \
         Reproduce (the server stores need `cargo xtask services up`):\n\n\
         ```sh\ncargo xtask bench-scaling --stores {command}\n```\n\n\
         Each point is one run of the release CLI, `kv --store URL bench --only put,get --json \
         --duration {secs} --ops K --concurrency C --value-size B`: C tasks share one store \
         handle; the put phase writes the K keys once, then goes on overwriting them until \
         {secs} s have passed; the get phase then reads them, around and around, for {secs} s. \
         ops/s is the operations over the phase's wall time, p50/p99 are per operation. K is \
         {keys} keys, fewer for large values (at most 256 MiB of them, except for the memory \
         store, which only keeps references to kv bench's one value buffer). Embedded stores \
         get a fresh store in `target/bench-scaling/` for every point, with their default \
         durability; server stores use the xtask test services on loopback. Every store's \
         line says when it was measured and the load average (`uptime`: 1, 5, 15 min) before \
         and after its sweep: other work on the machine shows in the numbers.\n\n",
        conc = list(setup.concurrency, |c| c.to_string()),
        size = size_text(setup.size),
        sizes = list(setup.sizes, size_text),
        tasks = setup.tasks,
        secs = setup.secs,
        keys = grouped(setup.keys),
    ));
    for (store, why) in setup.skipped {
        s.push_str(&format!(
            "- **{store}**: not measured in the last run: {why}\n"
        ));
    }
    if !setup.skipped.is_empty() {
        s.push('\n');
    }
    for run in runs {
        store_section(&mut s, run, setup);
    }
    if let Some(m) = memory {
        memory_section(&mut s, m);
    }
    s
}

fn store_section(s: &mut String, run: &StoreRun, setup: &Setup<'_>) {
    s.push_str(&format!(
        "### {store}\n\n\
         ![{store}: throughput and p99 latency by concurrency and by value size](docs/bench/{store}.png)\n\n\
         Measured {date}{mode} on {machine}; load average {load}.\n\n",
        store = run.store,
        date = run.date,
        mode = if run.mode == "quick" { " (`--quick`: short phases, rough numbers)" } else { "" },
        machine = run.machine,
        load = run.load.replace("->", "→"),
    ));
    s.push_str(&format!(
        "| tasks ({} values) | get ops/s | get p50 | get p99 | put ops/s | put p50 | put p99 |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        size_text(setup.size)
    ));
    for &c in setup.concurrency {
        s.push_str(&format!("| {c} |{}\n", cells(run, c, setup.size, false)));
    }
    s.push_str(&format!(
        "\n| value size ({} tasks) | get ops/s | get MiB/s | get p50 | get p99 | put ops/s | put MiB/s | put p50 | put p99 |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        setup.tasks
    ));
    for &size in setup.sizes {
        s.push_str(&format!(
            "| {} |{}\n",
            size_text(size),
            cells(run, setup.tasks, size, true)
        ));
    }
    s.push_str(&summary(run, setup));
    s.push_str(&failures(run, setup));
    if run.store == MEMORY {
        s.push_str(
            "- The memory store keeps the `Bytes` handle it is given and hands out clones: a \
             get or put moves a reference to kv bench's one value buffer, never the bytes \
             (no MiB/s column), so the value size costs it nothing.\n",
        );
    }
    s.push('\n');
}

/// The get and put cells of one table row; a failed point shows its error once.
fn cells(run: &StoreRun, c: u64, size: u64, bandwidth: bool) -> String {
    let mut row = String::new();
    for op in ["get", "put"] {
        match run.sample(op, c, size) {
            Some(x) => {
                row.push_str(&format!(" {} |", rate_text(x.ops_per_sec)));
                if bandwidth && run.store == MEMORY {
                    // It moves handles to one shared buffer, not bytes (see its note).
                    row.push_str(" — |");
                } else if bandwidth {
                    let mib = x.ops_per_sec * size as f64 / (1024.0 * 1024.0);
                    row.push_str(&format!(" {} |", mib_text(mib)));
                }
                row.push_str(&format!(
                    " {} | {} |",
                    latency_text(x.p50_us),
                    latency_text(x.p99_us)
                ));
            }
            None => {
                // Why is listed under the tables.
                let what = if run.error(c, size).is_some() {
                    "failed"
                } else {
                    "not measured"
                };
                let n = if bandwidth { 4 } else { 3 };
                row.push_str(&format!(" {what} |"));
                row.push_str(&" — |".repeat(n - 1));
            }
        }
    }
    row
}

/// One line per distinct error: the points that failed with it.
fn failures(run: &StoreRun, setup: &Setup<'_>) -> String {
    let mut points: Vec<(u64, u64)> = setup.concurrency.iter().map(|&c| (c, setup.size)).collect();
    for &size in setup.sizes {
        if !points.contains(&(setup.tasks, size)) {
            points.push((setup.tasks, size));
        }
    }
    let mut errors: Vec<(String, Vec<String>)> = Vec::new();
    for (c, size) in points {
        let Some(error) = run.error(c, size) else {
            continue;
        };
        let error = without_collection(error);
        let label = format!(
            "{c} task{}/{}",
            if c == 1 { "" } else { "s" },
            size_text(size)
        );
        match errors.iter_mut().find(|(e, _)| *e == error) {
            Some((_, labels)) => labels.push(label),
            None => errors.push((error, vec![label])),
        }
    }
    let mut out = String::new();
    for (error, labels) in errors {
        out.push_str(&format!("- failed at {}: {error}\n", labels.join(", ")));
    }
    if out.is_empty() {
        out
    } else {
        format!("\n{out}")
    }
}

/// An error without the benchmark's random collection name (`"kv-bench-<pid>-<random>"`),
/// so the same failure at several points reads as one.
fn without_collection(error: &str) -> String {
    let mut out = String::new();
    let mut rest = error;
    while let Some(at) = rest.find("kv-bench-") {
        out.push_str(&rest[..at]);
        out.push_str("kv-bench-…");
        let tail = &rest[at..];
        let end = tail.find(['"', ' ', ')', ';', ',']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A count with its thousands apart: `1 000 000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// MiB/s with the precision that matters: `0.3`, `24.8`, `5370`.
fn mib_text(mib: f64) -> String {
    if mib < 100.0 {
        format!("{mib:.1}")
    } else {
        format!("{mib:.0}")
    }
}

/// One line per operation kind: where throughput peaks and how p99 grows from 1 task to the
/// most, from the concurrency sweep.
fn summary(run: &StoreRun, setup: &Setup<'_>) -> String {
    let mut out = String::new();
    for op in ["get", "put"] {
        let pts: Vec<(u64, f64, f64)> = setup
            .concurrency
            .iter()
            .filter_map(|&c| {
                let x = run.sample(op, c, setup.size)?;
                Some((c, x.ops_per_sec, x.p99_us))
            })
            .collect();
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
            continue;
        };
        let Some(peak) = pts.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            continue;
        };
        out.push_str(&format!(
            "- {op}: peak {} ops/s at {} task{} ({:.1}× the rate with {}); p99 {} with {} → {} with {}.\n",
            rate_text(peak.1),
            peak.0,
            if peak.0 == 1 { "" } else { "s" },
            peak.1 / first.1.max(1e-9),
            first.0,
            latency_text(first.2),
            first.0,
            latency_text(last.2),
            last.0,
        ));
    }
    if out.is_empty() {
        out
    } else {
        format!("\n{out}")
    }
}

fn memory_section(s: &mut String, m: &MemoryRun) {
    let entries = grouped(m.rows.first().map_or(0, |r| r.entries));
    s.push_str(&format!(
        "### Memory per entry (memory store)\n\n\
         Resident-set growth while filling one collection with {entries} entries (16-byte keys, \
         100-byte values, each value its own allocation: 116 bytes of data per entry), each \
         subject in a fresh process; measured {} (load average {}). Reproduce alone with \
         `cargo run --release -p kv-benches --example memory_per_entry`.\n\n\
         | | bytes per entry | MiB per million entries | vs HashMap |\n|---|---:|---:|---:|\n",
        m.date,
        m.load.replace("->", "→"),
    ));
    let base = m
        .rows
        .iter()
        .find(|r| r.subject == "hashmap")
        .map(|r| r.bytes_per_entry);
    for r in &m.rows {
        let label = match r.subject.as_str() {
            "hashmap" => "`HashMap<String, Bytes>` (baseline)",
            "memory" => "`MemoryStore`",
            other => other,
        };
        let ratio = base.filter(|b| *b > 0.0).map_or("—".to_owned(), |b| {
            format!("{:.2}×", r.bytes_per_entry / b)
        });
        s.push_str(&format!(
            "| {label} | {:.0} | {:.0} | {ratio} |\n",
            r.bytes_per_entry, r.mib_per_million
        ));
    }
    s.push('\n');
}

/// Replaces the section of `doc` with `body`, or appends it with its markers.
pub fn write(doc: &Path, body: &str) -> Result<(), String> {
    let text =
        fs::read_to_string(doc).map_err(|e| format!("cannot read {}: {e}", doc.display()))?;
    let updated = replace(&text, body)?;
    fs::write(doc, updated).map_err(|e| format!("cannot write {}: {e}", doc.display()))
}

fn replace(text: &str, body: &str) -> Result<String, String> {
    match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if a < b => Ok(format!("{}{START}\n{body}{}", &text[..a], &text[b..])),
        (None, None) => {
            let sep = if text.ends_with('\n') { "\n" } else { "\n\n" };
            Ok(format!("{text}{sep}{START}\n{body}{END}\n"))
        }
        _ => Err(format!(
            "the {START} … {END} markers are out of order or one is missing"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_scaling::data::{MemoryUse, Sample};

    fn run() -> StoreRun {
        let mut samples = Vec::new();
        for (c, rate) in [(1, 1000.0), (4, 3000.0)] {
            for op in ["get", "put"] {
                samples.push(Sample {
                    op: op.to_owned(),
                    concurrency: c,
                    value_size: 1024,
                    ops: 100,
                    ops_per_sec: rate,
                    p50_us: 100.0,
                    p99_us: 200.0 * c as f64,
                    error: String::new(),
                });
            }
        }
        samples.push(Sample {
            op: "get".to_owned(),
            concurrency: 4,
            value_size: 100,
            ops: 0,
            ops_per_sec: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            error: "timed out after 60 s".to_owned(),
        });
        StoreRun {
            store: "redb".to_owned(),
            date: "2026-11-30 08:40 UTC".to_owned(),
            machine: "2 vCPU".to_owned(),
            load: "1.00 0.50 0.20 -> 1.10 0.60 0.30".to_owned(),
            mode: "full".to_owned(),
            samples,
        }
    }

    fn setup() -> Setup<'static> {
        Setup {
            concurrency: &[1, 4],
            sizes: &[100, 1024],
            size: 1024,
            tasks: 4,
            secs: 2.0,
            keys: 10_000,
            skipped: &[],
        }
    }

    #[test]
    fn the_section_has_plot_tables_summary_and_failures() {
        let memory = MemoryRun {
            date: "d".to_owned(),
            load: "l".to_owned(),
            rows: vec![
                MemoryUse {
                    subject: "hashmap".to_owned(),
                    entries: 1_000_000,
                    bytes_per_entry: 100.0,
                    mib_per_million: 95.4,
                },
                MemoryUse {
                    subject: "memory".to_owned(),
                    entries: 1_000_000,
                    bytes_per_entry: 250.0,
                    mib_per_million: 238.4,
                },
            ],
        };
        let text = section(&[run()], Some(&memory), &setup());
        assert!(text.starts_with("## Scaling\n"), "{text}");
        assert!(
            text.contains("cargo xtask bench-scaling --stores redb"),
            "{text}"
        );
        assert!(text.contains("](docs/bench/redb.png)"), "{text}");
        assert!(
            text.contains("| 4 | 3.0 k | 100 µs | 800 µs | 3.0 k |"),
            "{text}"
        );
        assert!(
            text.contains("| 100 B | failed | — | — | — |")
                && text.contains("- failed at 4 tasks/100 B: timed out after 60 s\n"),
            "{text}"
        );
        assert!(text.contains("| 1 KiB | 3.0 k | 2.9 |"), "{text}");
        assert!(
            text.contains("- get: peak 3.0 k ops/s at 4 tasks (3.0× the rate with 1)"),
            "{text}"
        );
        assert!(
            text.contains("| `MemoryStore` | 250 | 238 | 2.50× |"),
            "{text}"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(10_000), "10 000");
        assert_eq!(grouped(1_000_000), "1 000 000");
    }

    #[test]
    fn collection_names_are_left_out_of_errors() {
        assert_eq!(
            without_collection(
                r#"cannot remove "kv-bench-12-ab" (store: x; collection: "kv-bench-9-f")"#
            ),
            r#"cannot remove "kv-bench-…" (store: x; collection: "kv-bench-…")"#
        );
        assert_eq!(without_collection("timed out"), "timed out");
    }

    #[test]
    fn replacing_keeps_the_rest_and_appends_when_missing() {
        let doc = format!("# B\n\nintro\n{START}\nold\n{END}\ntail\n");
        assert_eq!(
            replace(&doc, "new\n").unwrap(),
            format!("# B\n\nintro\n{START}\nnew\n{END}\ntail\n")
        );
        assert_eq!(
            replace("# B\n", "new\n").unwrap(),
            format!("# B\n\n{START}\nnew\n{END}\n")
        );
        assert!(replace(&format!("{END}\n{START}\n"), "x").is_err());
        assert!(replace(&format!("{START}\n"), "x").is_err());
    }
}
