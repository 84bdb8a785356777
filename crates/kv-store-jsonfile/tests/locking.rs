//! The lock against a second writer, the opt-in `on_close` mode, the file's content, and the
//! errors of opening bad files.
//!
//! The two-process test re-executes this test binary: with `KV_JSONFILE_LOCK_CHILD=PATH` set,
//! `child_tries_to_open` opens PATH and exits successfully only if that fails with the
//! "locked by another process" error.

use std::process::Command;

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt};
use kv_store_jsonfile::{Durability, JsonFileStore};

const CHILD_ENV: &str = "KV_JSONFILE_LOCK_CHILD";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Not a test on its own: the body of the child process of `second_process_is_refused_at_once`.
#[test]
fn child_tries_to_open() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let e = JsonFileStore::open_path(path).expect_err("the file is locked by the parent");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!e.is_temporary());
    assert!(e.to_string().contains("locked by another process"), "{e}");
}

#[test]
fn second_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.json");
    let store = JsonFileStore::open_path(&path).unwrap();
    block_on(store.put("c", "k", &1)).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_tries_to_open", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .status()
        .unwrap();
    assert!(status.success(), "the child could open a locked file");
    // The parent's data is untouched and the file opens again once released.
    block_on(store.close()).unwrap();
    let again = JsonFileStore::open_path(&path).unwrap();
    assert_eq!(block_on(again.get::<i32>("c", "k")).unwrap(), Some(1));
}

#[test]
fn second_store_in_this_process_is_refused_until_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.json");
    let store = JsonFileStore::open_path(&path).unwrap();
    let e = JsonFileStore::open_path(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    block_on(store.close()).unwrap();
    drop(JsonFileStore::open_path(&path).unwrap());
    // Dropping the last handle releases the lock too.
    drop(JsonFileStore::open_path(&path).unwrap());
}

#[test]
fn the_file_is_readable_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.json");
    let store = JsonFileStore::open_path(&path).unwrap();
    block_on(async {
        store
            .put("users", "alice", &serde_json::json!({"age": 30}))
            .await
            .unwrap();
        store
            .put_bytes("bin", "b", Bytes::from_static(b"\xff\x00"))
            .await
            .unwrap();
    });
    // Durable on return: the file already holds both.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format\": \"kv-jsonfile\""), "{text}");
    assert!(text.contains("\"value\": {\"age\":30}"), "{text}");
    assert!(text.contains("\"value_base64\": \"/wA=\""), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["collections"]["users"]["alice"]["value"]["age"], 30);
    assert!(!path.with_extension("json.tmp").exists());
}

#[test]
fn on_close_writes_at_flush_close_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.json");
    let has = |k: &str| {
        std::fs::read_to_string(&path)
            .unwrap()
            .contains(&format!("\"{k}\""))
    };
    let store = JsonFileStore::builder(&path)
        .durability(Durability::OnClose)
        .open()
        .unwrap();
    assert!(!store.info().capability.durable);
    block_on(store.put("c", "a", &1)).unwrap();
    assert!(!has("a"));
    store.flush().unwrap();
    assert!(has("a"));
    block_on(store.put("c", "b", &1)).unwrap();
    block_on(store.close()).unwrap();
    assert!(has("b"));
    let store = JsonFileStore::open(&format!(
        "jsonfile://{}?durability=on_close",
        path.display()
    ))
    .unwrap();
    block_on(store.put("c", "d", &1)).unwrap();
    drop(store);
    assert!(has("d"));
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.json");
    std::fs::write(&path, "not json").unwrap();
    let e = JsonFileStore::open_path(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    std::fs::write(&path, r#"{"format": "something", "format_version": 1}"#).unwrap();
    assert_eq!(
        JsonFileStore::open_path(&path).unwrap_err().kind(),
        ErrorKind::Config
    );
    // The refused file is left as it was.
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("something")
    );
    std::fs::write(&path, "").unwrap();
    let store = JsonFileStore::open_path(&path).unwrap();
    assert!(block_on(store.collections()).unwrap().is_empty());
    drop(store);
    for bad in [dir.path().join("missing/kv.json"), dir.path().to_path_buf()] {
        let e = JsonFileStore::open_path(&bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
}

#[test]
fn relative_paths_work() {
    let dir = tempfile::tempdir().unwrap();
    let rel = dir
        .path()
        .strip_prefix(std::env::current_dir().unwrap())
        .map(|p| p.to_path_buf());
    // Only when the temporary directory is below the working directory; otherwise the URL
    // forms are covered by the config tests.
    if let Ok(rel) = rel {
        let url = format!("jsonfile://{}/kv.json", rel.display());
        let store = JsonFileStore::open(&url).unwrap();
        block_on(store.put("c", "k", &1)).unwrap();
        assert!(dir.path().join("kv.json").is_file());
    }
}
