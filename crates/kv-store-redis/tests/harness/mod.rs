//! The conformance harness of the redis store: every store the suite opens gets its own
//! namespace on the test server (so cases never see each other's data), and the suite's
//! `destroy` removes exactly that namespace.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_conformance::{Suite, service_url};
use kv_core::{DynStore, KvStore, Result};
use kv_store_redis::RedisStore;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Adds query parameters to a URL.
pub fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (k, v) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A URL with a namespace nobody else uses.
pub fn fresh_url(base: &str) -> String {
    let ns = format!(
        "kvtest-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    with_params(base, &[("namespace", &ns)])
}

fn rand_suffix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos()
}

async fn open(base: String) -> Result<DynStore> {
    Ok(Arc::new(RedisStore::connect(&fresh_url(&base)).await?))
}

/// The store's own URL (its location; the test servers have no password to redact).
fn same_store_url(store: &DynStore) -> String {
    store.info().location.clone()
}

async fn corrupt(store: DynStore, collection: String, key: String) -> Result<()> {
    let raw = RedisStore::connect(&same_store_url(&store)).await?;
    let mut cmd = kv_store_redis::redis::cmd("SET");
    cmd.arg(raw.redis_key(&collection, &key))
        .arg(&b"\xde\xad\xbe\xef: not a kv envelope"[..]);
    raw.raw_command::<()>(&cmd).await?;
    raw.close().await
}

async fn reopen(store: DynStore) -> Result<DynStore> {
    let url = same_store_url(&store);
    store.close().await?;
    Ok(Arc::new(RedisStore::connect(&url).await?))
}

/// The whole suite against the server whose URL is in `var` (plus `params`).
pub fn suite(name: &str, var: &'static str, hint: &str, params: Vec<(String, String)>) -> Suite {
    let base = service_url(var).map(|u| {
        let p: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        with_params(&u, &p)
    });
    Suite::new(name, move || {
        let base = base.clone().unwrap_or_default();
        open(base)
    })
    .needs_service(var, hint)
    .corrupt(corrupt)
    .reopen(reopen)
}
