//! Memory use per entry of the memory store, next to a plain `HashMap<String, Bytes>` holding
//! the same data: 1 000 000 entries (16-byte keys, 100-byte values, each value its own
//! allocation) by default, measured as the growth of the process's resident set (`VmRSS` in
//! `/proc/self/status`) from before the first insert to after the last.
//!
//! ```text
//! cargo run --release -p kv-benches --example memory_per_entry [-- --entries N] [--json]
//! ```
//!
//! Each subject is filled in a process of its own (the program runs itself again with
//! `--subject hashmap|memory`): an allocator keeps the memory a first subject freed, so a
//! second one measured in the same process would reuse those pages and read too low.
//! `cargo xtask bench-scaling` runs this and writes the result to BENCHMARKS.md.
//!
//! The numbers are the whole cost of holding the data: keys, values, the allocator's
//! per-allocation overhead and the tables' spare capacity (a hash table grows by doubling,
//! so the figure per entry depends a little on where the count falls between two sizes).
//! Linux only (`/proc`).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::{Command, ExitCode};

use bytes::Bytes;
use futures_util::FutureExt;
use kv::memory::MemoryStore;
use kv_core::{KvStore, PutOptions};

const DEFAULT_ENTRIES: u64 = 1_000_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;

/// What is filled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// `HashMap<String, Bytes>`: the least a map of these entries can cost.
    HashMap,
    /// `MemoryStore`, one collection, no TTL.
    Memory,
}

impl Subject {
    const ALL: [Subject; 2] = [Subject::HashMap, Subject::Memory];

    fn name(self) -> &'static str {
        match self {
            Subject::HashMap => "hashmap",
            Subject::Memory => "memory",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Subject::HashMap => "HashMap<String, Bytes>",
            Subject::Memory => "MemoryStore",
        }
    }

    fn from_name(name: &str) -> Option<Subject> {
        Subject::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One subject's result.
struct Measurement {
    subject: Subject,
    entries: u64,
    rss_before_kib: u64,
    rss_after_kib: u64,
}

impl Measurement {
    fn growth_bytes(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0
    }

    fn bytes_per_entry(&self) -> f64 {
        self.growth_bytes() / self.entries.max(1) as f64
    }

    fn mib_per_million(&self) -> f64 {
        self.bytes_per_entry() * 1e6 / (1024.0 * 1024.0)
    }

    fn json(&self) -> String {
        format!(
            "{{\"subject\":\"{}\",\"entries\":{},\"key_bytes\":{KEY_LEN},\"value_bytes\":{VALUE_LEN},\
             \"rss_before_kib\":{},\"rss_after_kib\":{},\"bytes_per_entry\":{:.1},\
             \"mib_per_million\":{:.1}}}",
            self.subject.name(),
            self.entries,
            self.rss_before_kib,
            self.rss_after_kib,
            self.bytes_per_entry(),
            self.mib_per_million()
        )
    }

    /// Reads back what `json` wrote (the parent reads its children's lines).
    fn parse(line: &str) -> Option<Measurement> {
        let text = |name: &str| {
            let at = line.find(&format!("\"{name}\":"))? + name.len() + 3;
            let rest = &line[at..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim_matches('"').to_owned())
        };
        let number = |name: &str| text(name)?.parse::<u64>().ok();
        Some(Measurement {
            subject: Subject::from_name(&text("subject")?)?,
            entries: number("entries")?,
            rss_before_kib: number("rss_before_kib")?,
            rss_after_kib: number("rss_after_kib")?,
        })
    }
}

/// The resident set of this process, in KiB.
fn rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status (Linux only): {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS line in /proc/self/status".to_owned())
}

/// Key number `i`: exactly 16 bytes (`k` and 15 digits).
fn key(i: u64, buf: &mut String) {
    buf.clear();
    let _ = write!(buf, "k{i:015}");
}

/// Value number `i`: 100 bytes in an allocation of its own, as values read from a socket
/// or a file would be.
fn value(i: u64) -> Bytes {
    let mut v = vec![b'v'; VALUE_LEN];
    v[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(v)
}

/// Fills `subject` with `entries` entries in this process and measures the growth.
fn measure(subject: Subject, entries: u64) -> Result<Measurement, String> {
    // The key buffer exists before the first reading: only what the map keeps is counted.
    let mut buf = String::with_capacity(KEY_LEN);
    let rss_before_kib = rss_kib()?;
    let rss_after_kib = match subject {
        Subject::HashMap => {
            let mut map: HashMap<String, Bytes> = HashMap::new();
            for i in 0..entries {
                key(i, &mut buf);
                map.insert(buf.clone(), value(i));
            }
            let after = rss_kib()?;
            black_box(&map);
            after
        }
        Subject::Memory => {
            let store = MemoryStore::new();
            for i in 0..entries {
                key(i, &mut buf);
                store
                    .put_opts("c", &buf, value(i), PutOptions::default())
                    .now_or_never()
                    .ok_or("the memory store's put did not complete on its first poll")?
                    .map_err(|e| format!("memory store put: {e}"))?;
            }
            let after = rss_kib()?;
            black_box(&store);
            after
        }
    };
    Ok(Measurement {
        subject,
        entries,
        rss_before_kib,
        rss_after_kib,
    })
}

/// Runs this program again for one subject and reads its result.
fn measure_in_child(subject: Subject, entries: u64) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let out = Command::new(&exe)
        .args([
            "--subject",
            subject.name(),
            "--entries",
            &entries.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} run failed ({}): {}",
            subject.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    stdout
        .lines()
        .find_map(Measurement::parse)
        .ok_or_else(|| format!("{} run printed no result: {stdout:?}", subject.name()))
}

struct Args {
    entries: u64,
    subject: Option<Subject>,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        entries: DEFAULT_ENTRIES,
        subject: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--entries" => {
                args.entries = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--entries needs a positive number")?;
            }
            "--subject" => {
                let name = it.next().unwrap_or_default();
                args.subject = Some(Subject::from_name(&name).ok_or_else(|| {
                    format!("--subject: expected hashmap or memory, not {name:?}")
                })?);
            }
            "--json" => args.json = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: memory_per_entry [--entries N] [--json])"
                ));
            }
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if let Some(subject) = args.subject {
        println!("{}", measure(subject, args.entries)?.json());
        return Ok(());
    }
    let results = Subject::ALL
        .into_iter()
        .map(|s| measure_in_child(s, args.entries))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        for m in &results {
            println!("{}", m.json());
        }
        return Ok(());
    }
    println!(
        "RSS growth of {} entries ({KEY_LEN}-byte keys, {VALUE_LEN}-byte values: {} bytes of data each)",
        args.entries,
        KEY_LEN + VALUE_LEN
    );
    println!(
        "{:<24}{:>14}{:>12}{:>16}{:>12}",
        "", "growth MiB", "B/entry", "MiB/million", "vs HashMap"
    );
    let base = results
        .first()
        .map_or(1.0, |m| m.bytes_per_entry().max(1.0));
    for m in &results {
        println!(
            "{:<24}{:>14.1}{:>12.1}{:>16.1}{:>11.2}×",
            m.subject.label(),
            m.growth_bytes() / (1024.0 * 1024.0),
            m.bytes_per_entry(),
            m.mib_per_million(),
            m.bytes_per_entry() / base
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memory_per_entry: {e}");
            ExitCode::FAILURE
        }
    }
}
