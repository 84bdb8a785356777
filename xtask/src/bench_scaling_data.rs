//! The results of `cargo xtask bench-scaling` and how they are kept: one CSV per store in
//! `docs/bench/<store>.csv` (and `docs/bench/memory-per-entry.csv`), committed next to the
//! plots, so the BENCHMARKS.md section and the PNGs can be rebuilt from them
//! (`--report-only`) and a run of some stores keeps the others' last results.
//!
//! ```text
//! # kv bench-scaling results of one store (written by `cargo xtask bench-scaling`)
//! # store: redb
//! # date: 2026-11-30 08:40 UTC
//! # machine: 2 × Intel Xeon ..., 24 GiB
//! # load: 1.20 1.10 0.90 -> 1.40 1.20 1.00
//! # mode: full
//! op,concurrency,value_size,ops,ops_per_sec,p50_us,p99_us,error
//! get,1,1024,20000,61234.5,14.2,30.1,
//! put,16,1048576,0,0,0,0,timed out after 60 s
//! ```
//!
//! The parsing is by hand: besides plotters, xtask has only std.

use std::fs;
use std::path::Path;

/// One operation kind measured at one (concurrency, value size) point.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `get` or `put`.
    pub op: String,
    pub concurrency: u64,
    pub value_size: u64,
    /// Operations run (0 for a point that failed).
    pub ops: u64,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Why the point has no numbers (empty when it has).
    pub error: String,
}

impl Sample {
    /// True if the point was measured.
    pub fn ok(&self) -> bool {
        self.error.is_empty() && self.ops > 0
    }
}

/// One store's sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreRun {
    pub store: String,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    pub machine: String,
    /// Load averages before and after the store's sweep (`before -> after`).
    pub load: String,
    /// `full` or `quick`.
    pub mode: String,
    pub samples: Vec<Sample>,
}

const HEADER: &str = "op,concurrency,value_size,ops,ops_per_sec,p50_us,p99_us,error";

impl StoreRun {
    /// The measured sample of `op` at a point, if any.
    pub fn sample(&self, op: &str, concurrency: u64, value_size: u64) -> Option<&Sample> {
        self.samples.iter().find(|s| {
            s.op == op && s.concurrency == concurrency && s.value_size == value_size && s.ok()
        })
    }

    /// The first error recorded at a point, if the point failed.
    pub fn error(&self, concurrency: u64, value_size: u64) -> Option<&str> {
        self.samples
            .iter()
            .find(|s| s.concurrency == concurrency && s.value_size == value_size && !s.ok())
            .map(|s| s.error.as_str())
    }

    pub fn to_csv(&self) -> String {
        let mut out = format!(
            "# kv bench-scaling results of one store (written by `cargo xtask bench-scaling`)\n\
             # store: {}\n# date: {}\n# machine: {}\n# load: {}\n# mode: {}\n{HEADER}\n",
            self.store,
            no_newline(&self.date),
            no_newline(&self.machine),
            no_newline(&self.load),
            self.mode
        );
        for s in &self.samples {
            out.push_str(&format!(
                "{},{},{},{},{:.1},{:.1},{:.1},{}\n",
                s.op,
                s.concurrency,
                s.value_size,
                s.ops,
                s.ops_per_sec,
                s.p50_us,
                s.p99_us,
                one_line(&s.error)
            ));
        }
        out
    }

    pub fn from_csv(text: &str) -> Result<StoreRun, String> {
        let meta = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {name}: ")))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let store = meta("store");
        if store.is_empty() {
            return Err("no `# store:` line".to_owned());
        }
        let mut samples = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line == HEADER || line.trim().is_empty() {
                continue;
            }
            samples.push(parse_row(line).ok_or_else(|| format!("line {}: malformed row", n + 1))?);
        }
        Ok(StoreRun {
            store,
            date: meta("date"),
            machine: meta("machine"),
            load: meta("load"),
            mode: meta("mode"),
            samples,
        })
    }

    /// Writes `dir/<store>.csv`.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(format!("{}.csv", self.store));
        fs::write(&path, self.to_csv()).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

fn parse_row(line: &str) -> Option<Sample> {
    // The error is last and may contain anything but a newline.
    let f: Vec<&str> = line.splitn(8, ',').collect();
    let [op, c, size, ops, rate, p50, p99, error] = f.as_slice() else {
        return None;
    };
    Some(Sample {
        op: (*op).to_owned(),
        concurrency: c.parse().ok()?,
        value_size: size.parse().ok()?,
        ops: ops.parse().ok()?,
        ops_per_sec: rate.parse().ok()?,
        p50_us: p50.parse().ok()?,
        p99_us: p99.parse().ok()?,
        error: (*error).to_owned(),
    })
}

/// The memory store's footprint next to a `HashMap`, from the `memory_per_entry` example.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryUse {
    /// `hashmap` or `memory`.
    pub subject: String,
    pub entries: u64,
    pub bytes_per_entry: f64,
    pub mib_per_million: f64,
}

/// The memory-use results of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryRun {
    pub date: String,
    pub load: String,
    pub rows: Vec<MemoryUse>,
}

pub const MEMORY_FILE: &str = "memory-per-entry.csv";
const MEMORY_HEADER: &str = "subject,entries,bytes_per_entry,mib_per_million";

impl MemoryRun {
    /// Reads the example's `--json` lines.
    pub fn from_json_lines(text: &str, date: String, load: String) -> Result<MemoryRun, String> {
        let rows = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                Some(MemoryUse {
                    subject: json_field(l, "subject")?.to_owned(),
                    entries: json_field(l, "entries")?.parse().ok()?,
                    bytes_per_entry: json_field(l, "bytes_per_entry")?.parse().ok()?,
                    mib_per_million: json_field(l, "mib_per_million")?.parse().ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("unexpected output of memory_per_entry: {text:?}"))?;
        if rows.is_empty() {
            return Err(format!("memory_per_entry printed no result: {text:?}"));
        }
        Ok(MemoryRun { date, load, rows })
    }

    pub fn to_csv(&self) -> String {
        let mut out = format!(
            "# memory store footprint (written by `cargo xtask bench-scaling`)\n\
             # date: {}\n# load: {}\n{MEMORY_HEADER}\n",
            no_newline(&self.date),
            no_newline(&self.load)
        );
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{:.1},{:.1}\n",
                r.subject, r.entries, r.bytes_per_entry, r.mib_per_million
            ));
        }
        out
    }

    pub fn from_csv(text: &str) -> Result<MemoryRun, String> {
        let meta = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {name}: ")))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let rows = text
            .lines()
            .filter(|l| !l.starts_with('#') && *l != MEMORY_HEADER && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let [subject, entries, per_entry, per_million] = f.as_slice() else {
                    return None;
                };
                Some(MemoryUse {
                    subject: (*subject).to_owned(),
                    entries: entries.parse().ok()?,
                    bytes_per_entry: per_entry.parse().ok()?,
                    mib_per_million: per_million.parse().ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("malformed row")?;
        Ok(MemoryRun {
            date: meta("date"),
            load: meta("load"),
            rows,
        })
    }
}

/// The text of a field of a flat JSON object line (`"name":value`), without quotes: enough
/// for the lines `kv bench --json` and `memory_per_entry --json` print (no nesting, no
/// escaped quotes in the fields read).
pub fn json_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":");
    let rest = line[line.find(&key)? + key.len()..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return Some(&s[..s.find('"')?]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// A text on one line (a `# name: value` line).
fn no_newline(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A text on one line without commas (a CSV field).
fn one_line(s: &str) -> String {
    no_newline(s).replace(',', ";")
}

/// A byte count as people write value sizes: `100 B`, `1 KiB`, `1 MiB`.
pub fn size_text(bytes: u64) -> String {
    const KIB: u64 = 1024;
    if bytes >= KIB * KIB && bytes.is_multiple_of(KIB * KIB) {
        format!("{} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// A rate with an SI suffix: `950`, `12.3 k`, `1.05 M`.
pub fn rate_text(x: f64) -> String {
    if x < 1_000.0 {
        format!("{x:.0}")
    } else if x < 1_000_000.0 {
        format!("{:.1} k", x / 1_000.0)
    } else {
        format!("{:.2} M", x / 1_000_000.0)
    }
}

/// A latency given in microseconds: `0.8 µs`, `120 µs`, `3.4 ms`, `1.20 s`.
pub fn latency_text(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.1} µs")
    } else if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(op: &str, c: u64, size: u64, error: &str) -> Sample {
        Sample {
            op: op.to_owned(),
            concurrency: c,
            value_size: size,
            ops: if error.is_empty() { 1000 } else { 0 },
            ops_per_sec: if error.is_empty() { 12345.6 } else { 0.0 },
            p50_us: 10.5,
            p99_us: 99.0,
            error: error.to_owned(),
        }
    }

    #[test]
    fn store_runs_round_trip_through_csv() {
        let run = StoreRun {
            store: "redb".to_owned(),
            date: "2026-11-30 08:40 UTC".to_owned(),
            machine: "2 × CPU, 24 GiB".to_owned(),
            load: "1.00 0.50 0.20 -> 1.10 0.60 0.30".to_owned(),
            mode: "full".to_owned(),
            samples: vec![
                sample("get", 1, 1024, ""),
                sample("put", 16, 1_048_576, "timed out after 60 s"),
            ],
        };
        let back = StoreRun::from_csv(&run.to_csv()).unwrap();
        assert_eq!(back, run);
        assert!(back.sample("get", 1, 1024).is_some());
        assert!(back.sample("put", 16, 1_048_576).is_none());
        assert_eq!(back.error(16, 1_048_576), Some("timed out after 60 s"));
    }

    #[test]
    fn errors_with_commas_and_newlines_stay_one_field() {
        let mut run = StoreRun::from_csv("# store: x\n").unwrap();
        run.samples.push(sample("get", 4, 100, "a, b\nc"));
        let back = StoreRun::from_csv(&run.to_csv()).unwrap();
        assert_eq!(back.samples[0].error, "a; b c");
    }

    #[test]
    fn malformed_csv_is_an_error() {
        assert!(StoreRun::from_csv("op,concurrency\n").is_err());
        assert!(StoreRun::from_csv("# store: x\nget,1,2\n").is_err());
    }

    #[test]
    fn memory_runs_read_the_example_output_and_round_trip() {
        let out = "{\"subject\":\"hashmap\",\"entries\":1000000,\"key_bytes\":16,\"value_bytes\":100,\
                   \"rss_before_kib\":2000,\"rss_after_kib\":100000,\"bytes_per_entry\":100.4,\
                   \"mib_per_million\":95.7}\n";
        let run = MemoryRun::from_json_lines(out, "d".to_owned(), "l".to_owned()).unwrap();
        assert_eq!(run.rows[0].subject, "hashmap");
        assert_eq!(run.rows[0].entries, 1_000_000);
        assert_eq!(MemoryRun::from_csv(&run.to_csv()).unwrap(), run);
        assert!(MemoryRun::from_json_lines("oops\n", String::new(), String::new()).is_err());
    }

    #[test]
    fn json_fields() {
        let l = r#"{"op":"get","ops_per_sec":716729.8,"p50_us":1.1,"ops":1000}"#;
        assert_eq!(json_field(l, "op"), Some("get"));
        assert_eq!(json_field(l, "ops_per_sec"), Some("716729.8"));
        assert_eq!(json_field(l, "ops"), Some("1000"));
        assert_eq!(json_field(l, "p99_us"), None);
    }

    #[test]
    fn human_units() {
        assert_eq!(size_text(100), "100 B");
        assert_eq!(size_text(1024), "1 KiB");
        assert_eq!(size_text(102_400), "100 KiB");
        assert_eq!(size_text(1_048_576), "1 MiB");
        assert_eq!(size_text(1500), "1500 B");
        assert_eq!(rate_text(950.0), "950");
        assert_eq!(rate_text(12_345.0), "12.3 k");
        assert_eq!(rate_text(1_050_000.0), "1.05 M");
        assert_eq!(latency_text(0.84), "0.8 µs");
        assert_eq!(latency_text(120.2), "120 µs");
        assert_eq!(latency_text(3_400.0), "3.4 ms");
        assert_eq!(latency_text(1_200_000.0), "1.20 s");
    }
}
