//! File locking and open errors: a second process cannot open a file in use, and bad paths are
//! clear errors, never panics.
//!
//! The two-process test re-executes this test binary: with `KV_DISK_LOCK_CHILD=PATH` set, the
//! `child_holds_the_lock` test opens the store at PATH, writes an entry, prints `LOCKED` and
//! holds the file until its standard input closes.

use std::path::Path;
use std::time::{Duration, Instant};

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_engine::testing::{HoldingChild, hold_until_released};
use kv_store_disk::DiskStore;

const CHILD_ENV: &str = "KV_DISK_LOCK_CHILD";

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
        let store = DiskStore::open_path(&path).expect("child opens the store");
        store
            .put("c", "from-child", &1)
            .await
            .expect("child writes");
        hold_until_released();
        store.close().await.expect("child closes");
    });
}

#[test]
fn second_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let child = HoldingChild::spawn("child_holds_the_lock", CHILD_ENV, &path);

    let started = Instant::now();
    let err = DiskStore::open_path(&path).expect_err("a second process must not open the file");
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
    child.release();
    block_on(async {
        let store = DiskStore::open_path(&path).expect("opens once the child is gone");
        assert_eq!(store.get::<i32>("c", "from-child").await.unwrap(), Some(1));
        store.close().await.unwrap();
    });
}

#[test]
fn second_store_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let first = DiskStore::open_path(&path).unwrap();
    let err = DiskStore::open_path(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    // Closing releases the lock at once.
    block_on(first.close()).unwrap();
    let again = DiskStore::open_path(&path).expect("reopens after close");
    block_on(again.close()).unwrap();
}

#[test]
fn dropping_the_store_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    drop(DiskStore::open_path(&path).unwrap());
    drop(DiskStore::open_path(&path).expect("reopens after drop"));
}

fn assert_open_error(path: &Path, kinds: &[ErrorKind]) -> String {
    let err = DiskStore::open_path(path).expect_err("must not open");
    assert!(kinds.contains(&err.kind()), "unexpected kind: {err}");
    let text = err.to_string();
    eprintln!("{}: {text}", path.display());
    assert!(
        text.contains(&path.display().to_string()),
        "the error names the path: {text}"
    );
    assert_eq!(err.store(), Some("redb"));
    assert_eq!(err.operation(), Some(kv_core::Operation::Open));
    text
}

#[test]
fn missing_directory_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = assert_open_error(
        &dir.path().join("no/such/dir/kv.redb"),
        &[ErrorKind::Config],
    );
    assert!(text.contains("directory does not exist"), "{text}");
}

#[test]
fn directory_or_file_in_the_path_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_open_error(dir.path(), &[ErrorKind::Config]);
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    assert_open_error(&file.join("kv.redb"), &[ErrorKind::Config]);
}

#[test]
fn unreadable_path_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // A process with CAP_DAC_OVERRIDE (root) ignores file modes; then use a file the kernel
    // refuses to open for writing even to root (sysfs), if there is one.
    let mut candidates = vec![locked.join("kv.redb")];
    candidates.push("/sys/kernel/notes".into());
    let denied = candidates.into_iter().find(|p| {
        let probe = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p);
        matches!(probe, Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied)
    });
    match denied {
        Some(path) => {
            let text = assert_open_error(&path, &[ErrorKind::Config]);
            assert!(text.contains("permission denied"), "{text}");
        }
        None => eprintln!("no path refuses this process: permission error not testable here"),
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A place where no file can be created.
    let text = assert_open_error(
        Path::new("/proc/kv-store-disk-test.redb"),
        &[
            ErrorKind::Config,
            ErrorKind::Unavailable,
            ErrorKind::Backend,
        ],
    );
    assert!(text.contains("cannot open"), "{text}");
}

#[test]
fn file_that_is_not_redb_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for content in [
        &b"hello, I am a text file and not a database"[..],
        &[0u8; 8192][..],
        &b"{\"json\": true}"[..],
    ] {
        let path = dir.path().join("not-redb.txt");
        std::fs::write(&path, content).unwrap();
        let text = assert_open_error(&path, &[ErrorKind::Config]);
        assert!(text.contains("not a redb database"), "{text}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "the file was modified"
        );
    }
}

#[test]
fn damaged_redb_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    block_on(async {
        let store = DiskStore::open_path(&path).unwrap();
        let entries: Vec<(String, i32)> = (0..500).map(|i| (format!("k{i}"), i)).collect();
        let refs: Vec<(&str, i32)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        store.put_many("c", &refs).await.unwrap();
        store.close().await.unwrap();
    });
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[4096..len] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();

    // Without the integrity check redb trusts the file; whatever it trips on must come back
    // as an error.
    match DiskStore::open_path(&path) {
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Config),
            "{e}"
        ),
        Ok(store) => {
            let _ = block_on(store.get_bytes("c", "k1"));
        }
    }
    let err = DiskStore::builder(&path)
        .check_integrity(true)
        .open()
        .expect_err("the integrity check finds the damage");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn empty_file_becomes_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.redb");
    std::fs::write(&path, b"").unwrap();
    let store = DiskStore::open_path(&path).unwrap();
    assert!(block_on(store.collections()).unwrap().is_empty());
    assert_eq!(store.info().kind, "redb");
}
