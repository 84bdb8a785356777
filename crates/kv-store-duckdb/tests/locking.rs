//! Two processes and one database file: the second fails at once with "locked by another
//! process", whether the first is a kv store (its lock file) or any DuckDB program (DuckDB's own
//! lock); after the first closes, the second opens.

use std::path::Path;
use std::process::Command;

use kv_core::{ErrorKind, KvStoreExt};
use kv_store_duckdb::DuckDbStore;

const CHILD_ENV: &str = "KV_DUCKDB_LOCK_CHILD";

/// In the child: open the file, print the outcome, exit.
fn child(path: &str) {
    match DuckDbStore::open_path(path) {
        Ok(_) => println!("CHILD: opened"),
        Err(e) => println!("CHILD: {:?} temporary={} {}", e.kind(), e.is_temporary(), e),
    }
}

fn run_child(path: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| {
            l.find("CHILD: ")
                .map(|at| l[at..].trim_end_matches("ok").trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no child output: {stdout}"))
}

#[test]
fn two_processes() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.duckdb");

    // A kv store holds the file: the lock file refuses the child.
    let store = DuckDbStore::open_path(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    rt.block_on(store.put("c", "k", &1)).unwrap();
    let line = run_child(&path);
    assert!(
        line.contains(&format!("{:?}", ErrorKind::Unavailable)),
        "{line}"
    );
    assert!(line.contains("temporary=false"), "{line}");
    assert!(line.contains("locked by another process"), "{line}");
    rt.block_on(kv_core::KvStore::close(&store)).unwrap();
    assert_eq!(run_child(&path), "CHILD: opened");

    // Any DuckDB program holds the file: DuckDB's own lock error is mapped the same way.
    let conn = duckdb::Connection::open(&path).unwrap();
    let line = run_child(&path);
    assert!(
        line.contains(&format!("{:?}", ErrorKind::Unavailable)),
        "{line}"
    );
    assert!(line.contains("locked by another process"), "{line}");
    drop(conn);
    assert_eq!(run_child(&path), "CHILD: opened");

    // The data survived all of it.
    let store = DuckDbStore::open_path(&path).unwrap();
    assert_eq!(rt.block_on(store.get::<i32>("c", "k")).unwrap(), Some(1));
}
