//! A durable write whose file write fails returns the error and changes nothing: not the data
//! other operations see, not the file, not a later successful write.

use kv_store_jsonfile::JsonFileStore;

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.json");
    let store = JsonFileStore::open_path(&path).unwrap().sync();
    store.put("c", "a", &1).unwrap();

    // A directory where the temporary file goes makes the next file write fail, even as root.
    let tmp = dir.path().join("kv.json.tmp");
    std::fs::create_dir(&tmp).unwrap();
    store
        .put("c", "b", &2)
        .expect_err("the file write must fail");
    assert_eq!(
        store.get::<i32>("c", "b").unwrap(),
        None,
        "visible after failing"
    );
    assert!(!std::fs::read_to_string(&path).unwrap().contains("\"b\""));

    std::fs::remove_dir(&tmp).unwrap();
    store.put("c", "c", &3).unwrap();
    store.close().unwrap();

    let store = JsonFileStore::open_path(&path).unwrap().sync();
    assert_eq!(store.get::<i32>("c", "a").unwrap(), Some(1));
    assert_eq!(
        store.get::<i32>("c", "b").unwrap(),
        None,
        "the failed write came back"
    );
    assert_eq!(store.get::<i32>("c", "c").unwrap(), Some(3));
}
