//! The kv-conformance suite against the read-only store (over a file written by the store, so
//! TTLs and created_at are declared). Cases that write are skipped by the suite for read-only
//! stores ("store is read-only"); the `read_only::*` cases check that every write is refused
//! with `ErrorKind::ReadOnly` and its context.

mod harness;

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::{DynStore, Result};
use kv_store_safetensors::SafetensorsStore;

async fn open() -> Result<DynStore> {
    let dir = harness::tempdir()?;
    let path = dir.path().join("ro.safetensors");
    std::fs::write(&path, SafetensorsStore::in_memory().to_bytes()?)?;
    let store = SafetensorsStore::open_read_only(&path)?;
    Ok(harness::register(store, Arc::new(dir)))
}

fn main() {
    Suite::new("safetensors-read-only", open).run()
}
