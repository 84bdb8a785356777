//! The conformance harness shared by `conformance.rs` (single etcd) and
//! `conformance_cluster.rs` (3-member cluster): every store the suite opens gets its own key
//! prefix.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_conformance::Suite;
use kv_core::{Bytes, DynStore, KvStore};
use kv_store_etcd::EtcdStore;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn url(var: &str) -> String {
    let base = kv_conformance::service_url(var).unwrap_or_default();
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

pub fn suite(name: &str, var: &'static str, hint: &str) -> Suite {
    Suite::new(name, move || async move {
        Ok(Arc::new(EtcdStore::connect(&url(var)).await?) as DynStore)
    })
    .needs_service(var, hint)
    .corrupt(|store: DynStore, collection, key| async move {
        let raw = EtcdStore::connect(&store.info().location).await?;
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
        Ok(Arc::new(EtcdStore::connect(&location).await?) as DynStore)
    })
}
