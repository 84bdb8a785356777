//! No path ever escapes the root: `..`, absolute paths, NUL, very long names and symbolic links
//! planted inside the tree. Also: the files are readable JSON, and two processes can share a
//! tree with atomic compare-and-swap.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt, PutMode, PutOptions};
use kv_store_filetree::{FileTreeStore, format};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Every path below `dir`, relative to it (symbolic links are not followed).
fn walk(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

const HOSTILE: &[&str] = &[
    "..",
    ".",
    "../outside",
    "../../etc/passwd",
    "/",
    "/abs",
    "/tmp/x",
    "a/../../b",
    "nul\0byte",
    "\0",
    "C:\\windows",
    "\\\\server\\share",
    "con",
    "~",
    ".kv-filetree.lock",
    ".kv-filetree.json",
    ".tmp-1-1",
];

#[test]
fn hostile_names_stay_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let store = FileTreeStore::open_path(&root).unwrap();
    let long = "x/".repeat(3000);
    let mut names: Vec<&str> = HOSTILE.to_vec();
    names.push(&long);
    block_on(async {
        for (i, n) in names.iter().enumerate() {
            store.put(n, n, &i).await.unwrap();
            store.put("c", n, &i).await.unwrap();
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(store.get::<usize>(n, n).await.unwrap(), Some(i), "{n:?}");
            assert_eq!(store.get::<usize>("c", n).await.unwrap(), Some(i), "{n:?}");
        }
        let mut keys = store.sync().keys("c").unwrap();
        keys.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(keys, want, "scans return the real keys");
        let cols = store.collections().await.unwrap();
        for n in &names {
            assert!(cols.iter().any(|c| c == n), "{n:?} not listed");
        }
    });
    // Nothing was written beside the root, and every name inside is short and plain.
    assert_eq!(
        walk(dir.path())
            .iter()
            .filter(|p| p.components().count() == 1)
            .count(),
        1
    );
    for p in walk(&root) {
        for c in p.components() {
            let s = c.as_os_str().to_str().unwrap();
            assert!(s.len() <= 255, "{s}");
            assert!(s != "." && s != ".." && !s.contains('\0'), "{s}");
        }
    }
    // The store's own files are intact.
    assert!(root.join(format::LOCK_FILE).is_file());
    let state = std::fs::read_to_string(root.join(format::STATE_FILE)).unwrap();
    assert!(state.contains("\"format\": 1"), "{state}");
    block_on(store.destroy()).unwrap();
    let left: Vec<_> = walk(&root).into_iter().collect();
    assert_eq!(
        left,
        vec![
            PathBuf::from(format::STATE_FILE),
            PathBuf::from(format::LOCK_FILE)
        ]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
}

#[cfg(unix)]
#[test]
fn planted_symlinks_are_never_followed() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let store = FileTreeStore::open_path(&root).unwrap();
    // A valid entry document outside the root.
    block_on(store.put("evil", "k", &"secret")).unwrap();
    let real = store.entry_path("evil", "k");
    std::fs::rename(&real, outside.join("k.json")).unwrap();
    std::fs::remove_dir(real.parent().unwrap()).unwrap();
    let secret = std::fs::read(outside.join("k.json")).unwrap();

    // 1. A collection directory that is a link out of the root.
    symlink(&outside, root.join("evil")).unwrap();
    block_on(async {
        let e = store.get_bytes("evil", "k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(
            store.put("evil", "k", &"x").await.unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            store.put("evil", "new", &"x").await.unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert!(store.delete("evil", "k").await.is_err());
        assert!(store.scan_opts("evil", Default::default()).await.is_err());
        assert!(
            !store
                .collections()
                .await
                .unwrap()
                .contains(&"evil".to_owned())
        );
        store.destroy().await.unwrap();
        store.cull().await.unwrap();
    });
    assert_eq!(std::fs::read(outside.join("k.json")).unwrap(), secret);
    assert!(!outside.join("new.json").exists());
    std::fs::remove_file(root.join("evil")).unwrap();

    // 2. An entry file that is a link out of the root.
    block_on(store.put("c", "other", &1)).unwrap();
    symlink(outside.join("k.json"), root.join("c").join("k.json")).unwrap();
    block_on(async {
        let e = store.get_bytes("c", "k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(store.scan_opts("c", Default::default()).await.is_err());
        // An upsert replaces the link itself (rename never follows it).
        store.put("c", "k", &2).await.unwrap();
        assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(2));
    });
    assert_eq!(std::fs::read(outside.join("k.json")).unwrap(), secret);
    symlink(outside.join("k.json"), root.join("c").join("k.json.tmp")).unwrap();
    std::fs::remove_file(root.join("c").join("k.json")).unwrap();
    symlink(outside.join("k.json"), root.join("c").join("k.json")).unwrap();
    block_on(async {
        // Deleting removes the link, never its target.
        assert!(store.delete("c", "k").await.unwrap());
        store.clear("c").await.unwrap();
    });
    assert_eq!(std::fs::read(outside.join("k.json")).unwrap(), secret);
}

#[test]
fn files_are_readable_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileTreeStore::open_path(dir.path()).unwrap();
    block_on(async {
        store
            .put("users", "Alice", &serde_json::json!({"age": 30}))
            .await
            .unwrap();
        store
            .put_bytes("bin", "b", Bytes::from_static(b"\xff\x00"))
            .await
            .unwrap();
    });
    let text = std::fs::read_to_string(dir.path().join("users/^alice.json")).unwrap();
    assert!(text.contains("\"key\": \"Alice\""), "{text}");
    assert!(text.contains("\"value\": {\"age\":30}"), "{text}");
    let bin = std::fs::read_to_string(dir.path().join("bin/b.json")).unwrap();
    assert!(bin.contains("\"value_base64\": \"/wA=\""), "{bin}");
    // Foreign files are ignored.
    std::fs::write(dir.path().join("users/notes.txt"), "hi").unwrap();
    std::fs::write(dir.path().join("users/README.json"), "{}").unwrap();
    std::fs::create_dir(dir.path().join("Other Stuff")).unwrap();
    assert_eq!(
        store.sync().keys("users").unwrap(),
        vec!["Alice".to_owned()]
    );
    assert_eq!(store.sync().collections().unwrap(), vec!["bin", "users"]);
    block_on(store.destroy()).unwrap();
    assert!(dir.path().join("users/notes.txt").exists());
    assert!(dir.path().join("Other Stuff").exists());
}

// ----- two processes -----

const CHILD_ENV: &str = "KV_FILETREE_CAS_CHILD";
const ROUNDS: u64 = 50;

fn increment(store: &FileTreeStore, n: u64) {
    block_on(async {
        for _ in 0..n {
            loop {
                let e = store.get_entry("c", "counter").await.unwrap().unwrap();
                let v: u64 = serde_json::from_slice(&e.value).unwrap();
                let opts = PutOptions::default().with_mode(PutMode::IfVersion(e.version.unwrap()));
                match store
                    .put_opts("c", "counter", Bytes::from((v + 1).to_string()), opts)
                    .await
                {
                    Ok(()) => break,
                    Err(err) if err.kind() == ErrorKind::ConditionFailed => continue,
                    Err(err) => panic!("{err}"),
                }
            }
        }
    });
}

/// Not a test on its own: the body of the child process of `two_processes_share_a_tree`.
#[test]
fn child_increments() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = FileTreeStore::open_path(PathBuf::from(path)).unwrap();
    println!("READY");
    increment(&store, ROUNDS);
}

#[test]
fn two_processes_share_a_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileTreeStore::open_path(dir.path()).unwrap();
    block_on(store.put("c", "counter", &0u64)).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_increments",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line.unwrap().trim_end().ends_with("READY") {
            break;
        }
    }
    increment(&store, ROUNDS);
    for _ in lines {}
    assert!(child.wait().unwrap().success());
    assert_eq!(
        block_on(store.get::<u64>("c", "counter")).unwrap(),
        Some(2 * ROUNDS)
    );
    // Versions stay unique across the processes: every write got a new one.
    let v = block_on(store.get_entry("c", "counter"))
        .unwrap()
        .unwrap()
        .version;
    assert!(v.and_then(|v| v.as_u64()).is_some());
}
