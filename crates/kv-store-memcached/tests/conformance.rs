//! The whole kv-conformance suite against real memcached servers (`KV_TEST_MEMCACHED_URL`,
//! e.g. `memcached://127.0.0.1:11311,127.0.0.1:11312`): every store the suite opens gets its
//! own key prefix, so runs and cases never see each other's entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_conformance::Suite;
use kv_core::{Bytes, DynStore, KvStore};
use kv_store_memcached::MemcachedStore;

const VAR: &str = "KV_TEST_MEMCACHED_URL";

static NEXT: AtomicU64 = AtomicU64::new(0);

fn url() -> String {
    let base = kv_conformance::service_url(VAR).unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{base}{sep}prefix=kvtest-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn main() {
    Suite::new("memcached", || async {
        let store = MemcachedStore::connect(&url()).await?;
        Ok(Arc::new(store) as DynStore)
    })
    .needs_service(VAR, "cargo xtask services up memcached")
    .corrupt(|store: DynStore, collection, key| async move {
        // The location holds the store's prefix: a second handle writes garbage bytes.
        let raw = MemcachedStore::connect(&store.info().location).await?;
        raw.put_raw(
            &collection,
            &key,
            Bytes::from_static(b"\xffnot an envelope"),
        )
        .await
    })
    .run()
}
