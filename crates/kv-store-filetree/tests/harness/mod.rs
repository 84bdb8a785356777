//! The conformance harness of the filetree store: every store the suite opens is a new tree in
//! its own temporary directory, removed when the suite is done with the store (the last handle
//! drops the directory).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Error, KvStore, Result};
use kv_engine::testing::Registry;
use kv_store_filetree::{Durability, FileTreeStore, FileTreeStoreBuilder};
use tempfile::TempDir;

/// The suite's hooks get a `DynStore`, which cannot be downcast: they find the `FileTreeStore`
/// behind it by its location (its root, unique per store).
static STORES: Registry<FileTreeStore> = Registry::new();

fn lookup(store: &DynStore) -> Result<(FileTreeStore, Arc<TempDir>)> {
    STORES.lookup(store)
}

async fn open(durability: Durability) -> Result<DynStore> {
    let dir = tempfile::Builder::new()
        .prefix("kv-store-filetree-conformance-")
        .tempdir()
        .map_err(Error::from)?;
    let store = FileTreeStore::builder(dir.path().join("tree"))
        .durability(durability)
        .open()?;
    Ok(STORES.register(store, Arc::new(dir)))
}

async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let (tree, _dir) = lookup(&store)?;
    let path = tree.entry_path(&collection, &key);
    let parent = path.parent().expect("an entry file has a directory");
    std::fs::create_dir_all(parent).map_err(Error::from)?;
    std::fs::write(&path, b"\xde\xad\xbe\xef: not a kv filetree document").map_err(Error::from)
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let (tree, dir) = lookup(&store)?;
    store.close().await?;
    let again = FileTreeStoreBuilder::from_config(tree.config().clone()).open()?;
    Ok(STORES.register(again, dir))
}

/// The whole suite against stores opened with `durability`, with the corrupt and reopen hooks.
pub fn suite(name: &str, durability: Durability) -> Suite {
    Suite::new(name, move || open(durability))
        .corrupt(corrupt)
        .reopen(reopen)
}
