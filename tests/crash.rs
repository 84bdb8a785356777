//! The crash checker keeps itself honest: a killed writer's store verifies, and the same store
//! with one acknowledged key deleted and another overwritten behind the writer's back does not.
//! (`cargo xtask crash` runs the real rounds; see RELIABILITY.md.)

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WRITER: &str = env!("CARGO_BIN_EXE_kv-crash-writer");

fn acks(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("OK "))
        .count()
}

fn writer(args: &[&str]) -> Output {
    Command::new(WRITER).args(args).output().unwrap()
}

fn summary(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn verify_passes_after_sigkill_and_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redb://{}", dir.path().join("kv.redb").display());
    let log = dir.path().join("ack.log");

    let mut child = Command::new(WRITER)
        .args(["write", &url, "--seed", "42"])
        .stdout(Stdio::from(File::create(&log).unwrap()))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while acks(&log) < 30 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer acknowledged nothing in 60 s"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the writer exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let log = log.to_str().unwrap();
    let state = dir.path().join("state.log");
    let state = state.to_str().unwrap();
    let out = writer(&["verify", &url, "--log", log, "--state-out", state]);
    let s = summary(&out);
    assert!(out.status.success(), "verify of an untouched store: {s}");
    assert!(
        s.contains("\"lost\":0,\"corrupt\":0") && s.ends_with("\"ok\":true}"),
        "{s}"
    );

    // Chaining: the state file alone describes the store.
    let out = writer(&["verify", &url, "--log", state]);
    assert!(
        out.status.success(),
        "verify from the state file: {}",
        summary(&out)
    );

    let out = writer(&["tamper", &url, "--log", log]);
    assert!(out.status.success(), "tamper: {}", summary(&out));
    let out = writer(&["verify", &url, "--log", log]);
    let s = summary(&out);
    assert_eq!(out.status.code(), Some(1), "verify must fail: {s}");
    assert!(s.contains("\"lost\":1,\"corrupt\":1"), "{s}");
    assert!(s.ends_with("\"ok\":false}"), "{s}");
}

#[test]
fn a_store_that_cannot_open_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ack.log");
    std::fs::write(&log, "OP 1 DEL c k\nOK 1\n").unwrap();
    let out = writer(&["verify", "nosuch://x", "--log", log.to_str().unwrap()]);
    let s = summary(&out);
    assert_eq!(out.status.code(), Some(2), "{s}");
    assert!(
        s.contains("reopen failed") && s.contains("\"ok\":false"),
        "{s}"
    );
}
