//! The whole kv-conformance suite against a real NATS server with JetStream
//! (`KV_TEST_NATS_URL`, e.g. `nats://127.0.0.1:14222`): every store the suite opens gets its
//! own namespace, so runs and cases never see each other's buckets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_conformance::Suite;
use kv_core::{Bytes, DynStore, KvStore};
use kv_store_nats::NatsStore;

const VAR: &str = "KV_TEST_NATS_URL";

static NEXT: AtomicU64 = AtomicU64::new(0);

fn url() -> String {
    let base = kv_conformance::service_url(VAR).unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{base}{sep}namespace=t{}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn main() {
    Suite::new("nats", || async {
        Ok(Arc::new(NatsStore::connect(&url()).await?) as DynStore)
    })
    .needs_service(VAR, "cargo xtask services up nats")
    .corrupt(|store: DynStore, collection, key| async move {
        let raw = NatsStore::connect(&store.info().location).await?;
        raw.put_raw(
            &collection,
            &key,
            Bytes::from_static(b"\xffnot an envelope"),
        )
        .await
    })
    .reopen(|store: DynStore| async move {
        let location = store.info().location.clone();
        store.close().await?;
        Ok(Arc::new(NatsStore::connect(&location).await?) as DynStore)
    })
    .run()
}
