//! The kv-conformance suite against the read-only store (over a file written by the store, so
//! TTLs and created_at are declared).
//!
//! kv-conformance has no "read-only" need yet: almost every case writes its fixture first, and
//! on this store that write is an `ErrorKind::ReadOnly` error. So this target runs the whole
//! suite in a child process and accepts exactly one kind of failure: a case whose error is
//! the store's ReadOnly refusal. Any other failure (a wrong answer, a panic, another error
//! kind) fails the target. The summary lists the cases that could not run for that reason.

mod harness;

use std::process::{Command, ExitCode};
use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Result};
use kv_store_safetensors::SafetensorsStore;

const CHILD: &str = "KV_SAFETENSORS_READ_ONLY_CHILD";
/// How the store's ReadOnly error reads (`ErrorKind::ReadOnly` display + the store's message).
const READ_ONLY_MARK: &str = "is opened read-only (open it with ?mode=rw to change it)";

async fn open() -> Result<DynStore> {
    let dir = harness::tempdir()?;
    let path = dir.path().join("ro.safetensors");
    std::fs::write(&path, SafetensorsStore::in_memory().to_bytes()?)?;
    let store = SafetensorsStore::open_read_only(&path)?;
    Ok(harness::TestStore::register(store, Arc::new(dir)))
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        Suite::new("safetensors-read-only", open).run()
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot find the test binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = match Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD, "1")
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cannot run the suite: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        print!("{stdout}");
        return ExitCode::SUCCESS;
    }
    // The failure report: "---- NAME ----" then the message, up to the second "failures:".
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut in_report = false;
    for line in stdout.lines() {
        if line.trim_end() == "failures:" {
            if in_report {
                break;
            }
            in_report = true;
            continue;
        }
        if !in_report {
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" ----"))
        {
            failures.push((name.to_owned(), String::new()));
        } else if let Some((_, msg)) = failures.last_mut() {
            msg.push_str(line);
            msg.push('\n');
        }
    }
    let (read_only, other): (Vec<_>, Vec<_>) = failures
        .iter()
        .partition(|(_, msg)| msg.contains(READ_ONLY_MARK));
    if failures.is_empty() || !other.is_empty() {
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        for (name, msg) in &other {
            println!("NOT a read-only refusal: {name}: {msg}");
        }
        return ExitCode::FAILURE;
    }
    // Rewrite the report: a refused case is neither a pass nor a failure of the store.
    let refused = |line: &str| {
        read_only
            .iter()
            .any(|(name, _)| line.contains(&format!("] {name} ")))
    };
    for line in stdout.lines() {
        if line.trim_end() == "failures:" {
            break;
        }
        match line.strip_suffix("FAILED") {
            Some(head) if refused(line) => println!("{head}refused (read-only store)"),
            _ => println!("{line}"),
        }
    }
    let count = |suffix: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with("test [") && l.trim_end().ends_with(suffix))
            .count()
    };
    println!(
        "conformance[safetensors-read-only]: {} passed, 0 failed, {} skipped, {} refused",
        count(" ok"),
        stdout
            .lines()
            .filter(|l| l.starts_with("test [") && l.contains(" ignored"))
            .count(),
        read_only.len()
    );
    println!(
        "read-only store: {} cases could not run because they write to the store and got \
         ErrorKind::ReadOnly (kv-conformance has no read-only need to skip them):",
        read_only.len()
    );
    for (name, _) in &read_only {
        println!("  read-only {name}");
    }
    ExitCode::SUCCESS
}
