//! Locking: a second process (or store) cannot open a log in use.
//!
//! The two-process test re-executes this test binary: with `KV_LOG_LOCK_CHILD=PATH` set, the
//! `child_holds_the_lock` test opens the store at PATH, writes an entry, prints `LOCKED` and
//! holds the file until its standard input closes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_store_log::LogStore;

const CHILD_ENV: &str = "KV_LOG_LOCK_CHILD";
const READY: &str = "LOCKED";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Not a test on its own: the body of the child process of `second_process_is_refused_at_once`.
#[test]
fn child_holds_the_lock() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    block_on(async {
        let store = LogStore::open_path(&path).expect("child opens the store");
        store
            .put("c", "from-child", &1)
            .await
            .expect("child writes");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY}").expect("stdout");
        out.flush().expect("stdout");
        drop(out);
        // Hold the file until the parent closes our stdin.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        store.close().await.expect("child closes");
    });
}

#[test]
fn second_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_the_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");

    // Wait for the child to hold the file (libtest prints its own lines first; with
    // --nocapture the child's line may start with `test child_holds_the_lock ... `).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut told = false;
        // Keep draining after the signal: closing the pipe early would fail the child.
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if !told && line.trim_end().ends_with(READY) {
                told = true;
                let _ = tx.send(true);
            }
        }
        if !told {
            let _ = tx.send(false);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(true) => {}
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child never reported holding the lock: {outcome:?}");
        }
    }

    let started = Instant::now();
    let err = LogStore::open_path(&path).expect_err("a second process must not open the log");
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        !err.is_temporary(),
        "a lock held by a process is not a blip: {err}"
    );
    let text = err.to_string();
    assert!(text.contains("locked by another process"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        waited < Duration::from_secs(2),
        "the open waited {waited:?}"
    );
    eprintln!("second process: {err}");

    // The child lets go; its write is there and the file opens.
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    block_on(async {
        let store = LogStore::open_path(&path).expect("opens once the child is gone");
        assert_eq!(store.get::<i32>("c", "from-child").await.unwrap(), Some(1));
        store.close().await.unwrap();
    });
}

#[test]
fn second_store_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    let first = LogStore::open_path(&path).unwrap();
    let err = LogStore::open_path(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    // Closing releases the lock at once.
    block_on(first.close()).unwrap();
    let again = LogStore::open_path(&path).expect("reopens after close");
    block_on(again.close()).unwrap();
}

#[test]
fn dropping_the_store_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.log");
    drop(LogStore::open_path(&path).unwrap());
    drop(LogStore::open_path(&path).expect("reopens after drop"));
}
