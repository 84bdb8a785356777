//! Turns criterion's results (`target/criterion/<group>/<bench>/new/estimates.json`) into the
//! tables of BENCHMARKS.md: a summary with each group's ratios to its `baseline_*` benchmark,
//! then per group the median time of each benchmark, its ratio and overhead, and its
//! throughput (from the group's `Throughput::Elements`), all from the same run.
//!
//! After `cargo xtask bench`, results older than the run are left out, and the groups that
//! were not measured are listed: those a benchmark skipped (it leaves a note saying why in
//! `target/criterion/kv-notes/STORE.skipped`, e.g. a test service that is not running) and
//! those of an earlier run that this one did not repeat (a filtered run).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const START: &str = "<!-- bench-tables:start -->";
const END: &str = "<!-- bench-tables:end -->";

/// Where the benchmarks leave their notes (under the criterion directory).
pub const NOTES_DIR: &str = "kv-notes";

/// What the report says about the run that produced the results.
pub struct Run {
    /// When `cargo xtask bench` started: older results are not from this run.
    pub started: SystemTime,
    /// The machine's load average (1, 5, 15 min) before the run.
    pub load_before: String,
    /// ... and after it.
    pub load_after: String,
    /// The day of the run, `YYYY-MM-DD`.
    pub date: String,
}

/// The file (in the notes directory) that keeps the last run's [`Run`], so that
/// `bench-report` renders its results exactly as `bench` did.
const RUN_FILE: &str = "run.txt";

impl Run {
    /// Keeps this run's facts next to its notes.
    pub fn save(&self, criterion_dir: &str) -> Result<(), String> {
        let started = self
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path = Path::new(criterion_dir).join(NOTES_DIR).join(RUN_FILE);
        let text = format!(
            "{started}\n{}\n{}\n{}\n",
            self.load_before, self.load_after, self.date
        );
        fs::create_dir_all(Path::new(criterion_dir).join(NOTES_DIR))
            .and_then(|()| fs::write(&path, text))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The last run's facts, if `bench` left them.
    pub fn load(criterion_dir: &str) -> Option<Run> {
        let text =
            fs::read_to_string(Path::new(criterion_dir).join(NOTES_DIR).join(RUN_FILE)).ok()?;
        let mut lines = text.lines();
        let secs: u64 = lines.next()?.parse().ok()?;
        Some(Run {
            // Whole seconds, rounded down: results written in the run's first second stay in.
            started: UNIX_EPOCH + Duration::from_secs(secs),
            load_before: lines.next()?.to_owned(),
            load_after: lines.next()?.to_owned(),
            date: lines.next()?.to_owned(),
        })
    }
}

/// Rewrites the section between `start` and `end` of `doc` with `body`.
pub fn replace_section(doc: &str, start: &str, end: &str, body: &str) -> Result<(), String> {
    let text = fs::read_to_string(doc).map_err(|e| format!("cannot read {doc}: {e}"))?;
    let (Some(a), Some(b)) = (text.find(start), text.find(end)) else {
        return Err(format!("{doc} has no {start} … {end} section"));
    };
    if b < a {
        return Err(format!("{doc}: {end} comes before {start}"));
    }
    let updated = format!("{}{start}\n{body}{}", &text[..a], &text[b..]);
    fs::write(doc, updated).map_err(|e| format!("cannot write {doc}: {e}"))
}

/// Rewrites the tables of `doc` from the results in `criterion_dir`: those of `run`, or of the
/// last run `bench` recorded (everything there is, if none).
pub fn update(criterion_dir: &str, doc: &str, run: Option<&Run>) -> Result<(), String> {
    let saved = match run {
        Some(_) => None,
        None => Run::load(criterion_dir),
    };
    let tables = render(Path::new(criterion_dir), run.or(saved.as_ref()))?;
    replace_section(doc, START, END, &tables)?;
    eprintln!("xtask: bench: tables of {doc} updated");
    print!("{tables}");
    Ok(())
}

/// One benchmark's result.
struct Bench {
    name: String,
    median_ns: f64,
    /// Operations (keys) per iteration, from `Throughput::Elements`.
    elements: Option<u64>,
    /// CPU time per call (ns) of the benchmark process and of the server, from the note the
    /// benchmark left (`NOTES/GROUP.BENCH.cpu`), when it left one in this run.
    cpu: Option<(u64, u64)>,
}

struct Group {
    name: String,
    benches: Vec<Bench>,
}

impl Group {
    fn baseline(&self) -> Option<&Bench> {
        self.benches.iter().find(|b| b.name.starts_with("baseline"))
    }

    /// The client CPU per call of benchmark `name` over the baseline's.
    fn cpu_ratio(&self, name: &str) -> Option<f64> {
        let base = self.baseline()?.cpu?.0;
        let this = self.benches.iter().find(|b| b.name == name)?.cpu?.0;
        (base > 0).then(|| this as f64 / base as f64)
    }
}

/// The groups under `dir` with their results; with `since`, only results written after it,
/// and the names of the groups whose results are all older.
fn read_groups(dir: &Path, since: Option<SystemTime>) -> Result<(Vec<Group>, Vec<String>), String> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("no benchmark results in {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir() && e.file_name() != "report" && e.file_name() != NOTES_DIR)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    let mut groups = Vec::new();
    let mut stale = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let mut benches = Vec::new();
        let mut old = false;
        for b in fs::read_dir(entry.path())
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
        {
            let new = b.path().join("new");
            let est_path = new.join("estimates.json");
            let Ok(est) = fs::read_to_string(&est_path) else {
                continue;
            };
            if let Some(since) = since {
                let fresh = fs::metadata(&est_path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= since);
                if !fresh {
                    old = true;
                    continue;
                }
            }
            let Some(median_ns) = median_ns(&est) else {
                continue;
            };
            let elements = fs::read_to_string(new.join("benchmark.json"))
                .ok()
                .and_then(|j| elements(&j));
            let bench = b.file_name().to_string_lossy().into_owned();
            let cpu = read_cpu(dir, &name, &bench, since);
            benches.push(Bench {
                name: bench,
                median_ns,
                elements,
                cpu,
            });
        }
        if benches.is_empty() {
            if old {
                stale.push(name);
            }
            continue;
        }
        benches.sort_by(|a, b| {
            (!a.name.starts_with("baseline"), &a.name)
                .cmp(&(!b.name.starts_with("baseline"), &b.name))
        });
        groups.push(Group { name, benches });
    }
    Ok((groups, stale))
}

/// The CPU per call (client, server; ns) in `NOTES/GROUP.BENCH.cpu` (`client server calls`),
/// if written after `since`.
pub fn read_cpu(
    dir: &Path,
    group: &str,
    bench: &str,
    since: Option<SystemTime>,
) -> Option<(u64, u64)> {
    let path = dir.join(NOTES_DIR).join(format!("{group}.{bench}.cpu"));
    if let Some(since) = since {
        let modified = fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if modified < since {
            return None;
        }
    }
    let text = fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (client, server) = (it.next()??, it.next()??);
    (client > 0).then_some((client, server))
}

/// The skip notes: (store, reason, groups).
fn read_notes(dir: &Path, since: Option<SystemTime>) -> Vec<(String, String, Vec<String>)> {
    let Ok(rd) = fs::read_dir(dir.join(NOTES_DIR)) else {
        return Vec::new();
    };
    let mut notes: Vec<_> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "skipped"))
        .filter(|e| {
            since.is_none_or(|s| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= s)
            })
        })
        .filter_map(|e| {
            let store = e.path().file_stem()?.to_string_lossy().into_owned();
            let text = fs::read_to_string(e.path()).ok()?;
            let mut lines = text.lines();
            let reason = lines.next()?.to_owned();
            let groups = lines.map(str::to_owned).filter(|l| !l.is_empty()).collect();
            Some((store, reason, groups))
        })
        .collect();
    notes.sort();
    notes
}

fn render(dir: &Path, run: Option<&Run>) -> Result<String, String> {
    let since = run.map(|r| r.started);
    let (groups, stale) = read_groups(dir, since)?;
    let notes = read_notes(dir, since);
    let mut out = String::new();
    if let Some(run) = run {
        out.push_str(&format!(
            "\nRun of {}; load average (1, 5, 15 min) before: {}, after: {}.\n",
            run.date, run.load_before, run.load_after
        ));
    }
    out.push_str(&summary(&groups));
    if !notes.is_empty() || !stale.is_empty() {
        out.push_str("\n**Not measured in this run**\n\n");
        for (store, reason, names) in &notes {
            out.push_str(&format!(
                "- {store} ({}): {reason}\n",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !stale.is_empty() {
            out.push_str(&format!(
                "- not run this time (filtered out), results of an earlier run left out: {}\n",
                stale
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out.push_str(
        "\n<details><summary>Every benchmark: median, ratio, overhead, throughput</summary>\n",
    );
    for g in &groups {
        out.push_str(&detail(g));
    }
    out.push_str("\n</details>\n\n");
    Ok(out)
}

/// The contenders that get a column of their own in the summary (when present); the other
/// benchmarks of a group are listed in its last cell.
const SUMMARY_COLUMNS: &[&str] = &["kv_static", "kv_dyn", "kv_static_in_tokio"];

/// One line per group: the baseline's median and each other benchmark's ratio to it.
fn summary(groups: &[Group]) -> String {
    let columns: Vec<&str> = SUMMARY_COLUMNS
        .iter()
        .copied()
        .filter(|c| {
            groups
                .iter()
                .any(|g| g.benches.iter().any(|b| b.name == *c))
        })
        .collect();
    let is_other =
        |b: &Bench| !b.name.starts_with("baseline") && !columns.contains(&b.name.as_str());
    let others = groups.iter().any(|g| g.benches.iter().any(is_other));
    let cpu_column = groups.iter().any(|g| g.cpu_ratio("kv_static").is_some());
    let mut out = String::from("\n| group | baseline | baseline median |");
    for c in &columns {
        out.push_str(&format!(" {c} |"));
    }
    if cpu_column {
        out.push_str(" kv_static client CPU |");
    }
    if others {
        out.push_str(" others |");
    }
    out.push_str("\n|---|---|---:|");
    out.push_str(&"---:|".repeat(columns.len() + usize::from(cpu_column)));
    if others {
        out.push_str("---|");
    }
    out.push('\n');
    for g in groups {
        let base = g.baseline();
        let ratio = |b: &Bench| match base {
            Some(base) if base.median_ns > 0.0 => format!("{:.2}×", b.median_ns / base.median_ns),
            _ => human(b.median_ns),
        };
        out.push_str(&format!(
            "| {} | {} | {} |",
            g.name,
            base.map_or("–", |b| b.name.as_str()),
            base.map_or("–".to_owned(), |b| human(b.median_ns))
        ));
        for c in &columns {
            let cell = g
                .benches
                .iter()
                .find(|b| b.name == *c)
                .map_or("–".to_owned(), ratio);
            out.push_str(&format!(" {cell} |"));
        }
        if cpu_column {
            let cell = g
                .cpu_ratio("kv_static")
                .map_or("–".to_owned(), |r| format!("{r:.2}×"));
            out.push_str(&format!(" {cell} |"));
        }
        if others {
            let cell: Vec<String> = g
                .benches
                .iter()
                .filter(|b| is_other(b))
                .map(|b| format!("{} {}", b.name, ratio(b)))
                .collect();
            let cell = if cell.is_empty() {
                "–".to_owned()
            } else {
                cell.join(", ")
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

fn detail(g: &Group) -> String {
    let base = g.baseline().map(|b| b.median_ns);
    let cpu = g.benches.iter().any(|b| b.cpu.is_some());
    let mut out = format!(
        "\n**{}**\n\n| benchmark | median | ratio to baseline | overhead | throughput |{}\n|---|---:|---:|---:|---:|{}\n",
        g.name,
        if cpu {
            " CPU per call: client / server | client CPU ratio |"
        } else {
            ""
        },
        if cpu { "---:|---:|" } else { "" }
    );
    for b in &g.benches {
        let (ratio, over) = match base {
            Some(base) if base > 0.0 => (
                format!("{:.2}×", b.median_ns / base),
                signed(b.median_ns - base),
            ),
            _ => ("–".into(), "–".into()),
        };
        let throughput = match b.elements {
            Some(n) if b.median_ns > 0.0 => {
                let unit = if n == 1 || g.name.contains("_tasks_") {
                    "ops/s"
                } else {
                    "keys/s"
                };
                format!("{} {unit}", si(n as f64 * 1e9 / b.median_ns))
            }
            _ => "–".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {ratio} | {over} | {throughput} |",
            b.name,
            human(b.median_ns)
        ));
        if cpu {
            let per_call = b.cpu.map_or("–".to_owned(), |(client, server)| {
                if server == 0 {
                    human(client as f64)
                } else {
                    format!("{} / {}", human(client as f64), human(server as f64))
                }
            });
            let ratio = g
                .cpu_ratio(&b.name)
                .map_or("–".to_owned(), |r| format!("{r:.2}×"));
            out.push_str(&format!(" {per_call} | {ratio} |"));
        }
        out.push('\n');
    }
    out
}

/// The median point estimate, in nanoseconds, from criterion's estimates.json (parsed by
/// hand: xtask has no dependencies).
pub fn median_ns(json: &str) -> Option<f64> {
    let after = &json[json.find("\"median\"")?..];
    let after = &after[after.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = after.find([',', '}'])?;
    after[..end].trim().parse().ok()
}

/// `N` of `"throughput":{"Elements":N}` in criterion's benchmark.json.
fn elements(json: &str) -> Option<u64> {
    let after = &json[json.find("\"Elements\"")? + "\"Elements\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = after.find([',', '}'])?;
    after[..end].trim().parse().ok()
}

/// Operations per second of a benchmark: `Elements` per median time, or `None` without a
/// throughput.
pub fn ops_per_sec(criterion_dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let new = criterion_dir.join(group).join(bench).join("new");
    let median = median_ns(&fs::read_to_string(new.join("estimates.json")).ok()?)?;
    let n = elements(&fs::read_to_string(new.join("benchmark.json")).ok()?)?;
    (median > 0.0).then(|| n as f64 * 1e9 / median)
}

/// A difference with its sign: `+83.0 ns`, `-16.02 µs`.
fn signed(ns: f64) -> String {
    let sign = if ns < 0.0 { '-' } else { '+' };
    format!("{sign}{}", human(ns.abs()))
}

fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

/// A rate with an SI suffix: `950`, `12.3 k`, `1.05 M`.
pub fn si(x: f64) -> String {
    if x < 1_000.0 {
        format!("{x:.0}")
    } else if x < 1_000_000.0 {
        format!("{:.1} k", x / 1_000.0)
    } else {
        format!("{:.2} M", x / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":40.1,"upper_bound":41.0},"point_estimate":40.5,"standard_error":0.2}}"#;
        assert_eq!(median_ns(json), Some(40.5));
        assert_eq!(median_ns("{}"), None);
    }

    #[test]
    fn parses_throughput() {
        let json = r#"{"group_id":"redis_get_tasks_64","function_id":"kv_static","value_str":null,"throughput":{"Elements":64},"full_id":"x"}"#;
        assert_eq!(elements(json), Some(64));
        let none = r#"{"group_id":"memory_get","throughput":null,"full_id":"x"}"#;
        assert_eq!(elements(none), None);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(12.34), "12.3 ns");
        assert_eq!(human(1_500.0), "1.50 µs");
        assert_eq!(human(2_500_000.0), "2.50 ms");
        assert_eq!(signed(-16_021.0), "-16.02 µs");
        assert_eq!(signed(83.0), "+83.0 ns");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3 k");
        assert_eq!(si(1_050_000.0), "1.05 M");
    }

    #[test]
    fn renders_fresh_groups_and_lists_the_rest() {
        let dir = std::env::temp_dir().join(format!("kv-bench-report-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let write = |group: &str, bench: &str, median: f64, elements: Option<u64>| {
            let new = dir.join(group).join(bench).join("new");
            fs::create_dir_all(&new).unwrap();
            fs::write(
                new.join("estimates.json"),
                format!(r#"{{"median":{{"point_estimate":{median},"standard_error":0.1}}}}"#),
            )
            .unwrap();
            let t = elements.map_or("null".to_owned(), |n| format!(r#"{{"Elements":{n}}}"#));
            fs::write(
                new.join("benchmark.json"),
                format!(r#"{{"throughput":{t}}}"#),
            )
            .unwrap();
        };
        write("old_get", "baseline_x", 10.0, None);
        let started = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write("a_get", "baseline_raw", 1_000.0, Some(1));
        write("a_get", "kv_static", 1_500.0, Some(1));
        write("a_get_many_100", "baseline_raw", 10_000.0, Some(100));
        write("a_get_many_100", "kv_dyn", 20_000.0, Some(100));
        fs::create_dir_all(dir.join(NOTES_DIR)).unwrap();
        fs::write(
            dir.join(NOTES_DIR).join("redis.skipped"),
            "no server\nredis_get\n",
        )
        .unwrap();
        let run = Run {
            started,
            load_before: "1.00 1.00 1.00".into(),
            load_after: "2.00 1.00 1.00".into(),
            date: "2026-12-01".into(),
        };
        write("a_get", "layer_x", 2_000.0, Some(1));
        let notes = dir.join(NOTES_DIR);
        fs::write(notes.join("a_get.baseline_raw.cpu"), "1000 3000 50\n").unwrap();
        fs::write(notes.join("a_get.kv_static.cpu"), "1100 3000 40\n").unwrap();
        let out = render(&dir, Some(&run)).unwrap();
        run.save(dir.to_str().unwrap()).unwrap();
        let loaded = Run::load(dir.to_str().unwrap()).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(loaded.date, "2026-12-01");
        assert_eq!(loaded.load_after, "2.00 1.00 1.00");
        assert!(loaded.started <= started);
        assert!(
            out.contains("| a_get | baseline_raw | 1.00 µs | 1.50× | – |"),
            "{out}"
        );
        assert!(
            out.contains("| a_get_many_100 | baseline_raw | 10.00 µs | – | 2.00× |"),
            "{out}"
        );
        assert!(
            out.contains("| kv_dyn | 20.00 µs | 2.00× | +10.00 µs | 5.00 M keys/s |"),
            "{out}"
        );
        assert!(
            out.contains("| kv_static | 1.50 µs | 1.50× | +500.0 ns | 666.7 k ops/s |"),
            "{out}"
        );
        assert!(
            out.contains("| a_get | baseline_raw | 1.00 µs | 1.50× | – | 1.10× |"),
            "{out}"
        );
        assert!(
            out.contains("| a_get_many_100 | baseline_raw | 10.00 µs | – | 2.00× | – |"),
            "{out}"
        );
        assert!(
            out.contains("| 666.7 k ops/s | 1.10 µs / 3.00 µs | 1.10× |"),
            "{out}"
        );
        assert!(
            out.contains("| layer_x | 2.00 µs | 2.00× | +1.00 µs | 500.0 k ops/s | – | – |"),
            "{out}"
        );
        assert!(out.contains("- redis (`redis_get`): no server"), "{out}");
        assert!(out.contains("earlier run left out: `old_get`"), "{out}");
        assert!(!out.contains("baseline_x"), "{out}");
    }
}
