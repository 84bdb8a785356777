//! The blocking API, from plain threads.

use std::time::Duration;

use kv::ErrorKind;

#[test]
fn blocking_store_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redb://{}", dir.path().join("b.redb").display());
    let store = kv::blocking::Store::open(&url).unwrap();
    store.put("c", "a", &1).unwrap();
    store
        .put_with_ttl("c", "b", &2, Duration::from_secs(60))
        .unwrap();
    store.put_many("c", &[("x", 3), ("y", 4)]).unwrap();
    assert_eq!(store.get::<i32>("c", "a").unwrap(), Some(1));
    assert_eq!(
        store.get_many::<i32>("c", &["x", "zz", "y"]).unwrap(),
        vec![Some(3), None, Some(4)]
    );
    let mut keys = store.keys("c").unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "b", "x", "y"]);
    assert_eq!(store.len("c").unwrap(), 4);
    assert!(store.put_if_absent("c", "new", &5).unwrap());
    assert!(!store.put_if_absent("c", "new", &6).unwrap());
    assert_eq!(store.delete_many("c", &["x", "y"]).unwrap(), 2);
    assert_eq!(store.collections().unwrap(), ["c"]);
    assert_eq!(store.clear("c").unwrap(), 3);
    store.close().unwrap();
    // Persisted across handles.
    let again = kv::blocking::Store::open(&url).unwrap();
    assert!(again.is_empty("c").unwrap());
}

#[test]
fn blocking_store_is_usable_from_many_threads() {
    let store = std::sync::Arc::new(kv::blocking::Store::open("memory://").unwrap());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    store.put("c", &format!("{t}-{i}"), &i).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.len("c").unwrap(), 400);
}

#[tokio::test]
async fn blocking_inside_a_runtime_is_an_error_not_a_deadlock() {
    let store = kv::blocking::Store::from_store(kv::open("memory://").await.unwrap());
    // Building the runtime inside a runtime is fine; using it is refused.
    let store = store.unwrap();
    let err = store.put("c", "k", &1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    // Dropping it here, inside the runtime, must not panic either.
    drop(store);
    let err = kv::blocking::Store::open("memory://").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}
