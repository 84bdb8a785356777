//! Opening: the LOCK file, relative paths, error paths, the blocking API.

use kv_core::{ErrorKind, KvStore};
use kv_store_unqlite::UnqliteStore;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn second_open_is_locked_until_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = UnqliteStore::open_path(&path).unwrap();
    let e = UnqliteStore::open_path(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("locked by another process"), "{e}");
    store.sync().put("c", "k", &1).unwrap();
    block_on(store.close()).unwrap();
    let again = UnqliteStore::open_path(&path).unwrap().sync();
    assert_eq!(again.get::<i32>("c", "k").unwrap(), Some(1));
}

#[test]
fn relative_and_absolute_urls() {
    let dir = tempfile::tempdir().unwrap();
    let abs = format!("unqlite://{}", dir.path().join("abs").display());
    assert!(abs.starts_with("unqlite:///"));
    let s = UnqliteStore::open(&abs).unwrap();
    block_on(s.close()).unwrap();
    // A relative path is resolved against the working directory.
    let cwd = std::env::current_dir().unwrap();
    let rel = dir.path().join("rel");
    let rel = pathdiff(&rel, &cwd);
    let s = UnqliteStore::open(&format!("unqlite://{}", rel.display())).unwrap();
    s.sync().put("c", "k", &2).unwrap();
    block_on(s.close()).unwrap();
    assert!(dir.path().join("rel").is_file());
}

/// `path` relative to `base` (both absolute).
fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    let mut rel = std::path::PathBuf::new();
    for _ in base.components().skip(1) {
        rel.push("..");
    }
    rel.join(path.strip_prefix("/").unwrap())
}

#[test]
fn bad_paths_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    for p in [
        dir.path().to_path_buf(),
        dir.path().join("missing/child/db"),
    ] {
        let e = UnqliteStore::open_path(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
    let e = UnqliteStore::open("unqlite://x?bogus=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}
