//! The whole kv-conformance suite against the null store: every case that needs stored data
//! is skipped with that reason; the rest (validation, errors, empty reads) must pass.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_store_null::NullStore;

fn main() {
    Suite::new("null", || async {
        Ok(Arc::new(NullStore::new()) as DynStore)
    })
    .run()
}
