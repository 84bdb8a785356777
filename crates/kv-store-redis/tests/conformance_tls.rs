//! The whole kv-conformance suite against Redis over TLS (`KV_TEST_REDIS_TLS_URL`, e.g.
//! `rediss://127.0.0.1:16380`, verified against the CA in `KV_TEST_REDIS_TLS_CA` unless the
//! URL already names one with `ca=` or says `insecure=true`).

mod harness;

fn main() {
    let url = kv_conformance::service_url("KV_TEST_REDIS_TLS_URL").unwrap_or_default();
    let mut params = Vec::new();
    if !url.contains("ca=")
        && !url.contains("insecure=")
        && let Some(ca) = kv_conformance::service_url("KV_TEST_REDIS_TLS_CA")
    {
        params.push(("ca".to_owned(), ca));
    }
    harness::suite(
        "redis-tls",
        "KV_TEST_REDIS_TLS_URL",
        "cargo xtask services up redis-tls",
        params,
    )
    .run()
}
