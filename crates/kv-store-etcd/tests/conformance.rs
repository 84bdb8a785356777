//! The whole kv-conformance suite against a real etcd (`KV_TEST_ETCD_URL`, e.g.
//! `etcd://127.0.0.1:12379`), and again against the 3-member cluster when
//! `KV_TEST_ETCD_CLUSTER_URL` is set (`KV_CONFORMANCE_ETCD=cluster` picks the cluster):
//! every store the suite opens gets its own key prefix.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_conformance::Suite;
use kv_core::{Bytes, DynStore, KvStore};
use kv_store_etcd::EtcdStore;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn var() -> &'static str {
    if std::env::var("KV_CONFORMANCE_ETCD").is_ok_and(|v| v == "cluster") {
        "KV_TEST_ETCD_CLUSTER_URL"
    } else {
        "KV_TEST_ETCD_URL"
    }
}

fn url() -> String {
    let base = kv_conformance::service_url(var()).unwrap_or_default();
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
    let name = if var() == "KV_TEST_ETCD_URL" {
        "etcd"
    } else {
        "etcd-cluster"
    };
    Suite::new(name, || async {
        Ok(Arc::new(EtcdStore::connect(&url()).await?) as DynStore)
    })
    .needs_service(var(), "cargo xtask services up etcd")
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
    .run()
}
