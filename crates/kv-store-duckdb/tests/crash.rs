//! SIGKILL in the middle of writes: every acknowledged write is there after reopening, and the
//! database opens without repair (DuckDB replays its write-ahead log).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kv_store_duckdb::DuckDbStore;

const CHILD_ENV: &str = "KV_DUCKDB_CRASH_CHILD";

/// In the child: write forever, print each acknowledged key.
fn child(path: &str) {
    let store = DuckDbStore::open_path(path).unwrap().sync();
    for i in 0u64.. {
        let key = format!("k{i:08}");
        if i % 10 == 0 {
            let batch: Vec<(String, u64)> = (0..20).map(|j| (format!("{key}-{j}"), j)).collect();
            let refs: Vec<(&str, u64)> = batch.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            store.put_many("batch", &refs).unwrap();
        }
        store.put("c", &key, &i).unwrap();
        println!("ACK {i}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.duckdb");
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "acknowledged_writes_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut last = None;
        // Kill after a number of acknowledgements that differs per round (no timing involved).
        let kill_after = 50 + round * 37;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(i) = line
                .find("ACK ")
                .and_then(|at| line[at + 4..].trim().parse::<u64>().ok())
            {
                last = Some(i);
                if i >= kill_after {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        let last = last.expect("the child acknowledged writes");
        let store = DuckDbStore::open_path(&path).unwrap().sync();
        for i in 0..=last {
            assert_eq!(
                store.get::<u64>("c", &format!("k{i:08}")).unwrap(),
                Some(i),
                "round {round}: acknowledged write {i} of {last} is missing"
            );
        }
        store.close().unwrap();
    }
}
