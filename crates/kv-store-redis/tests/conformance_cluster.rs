//! The whole kv-conformance suite against a Redis Cluster (`KV_TEST_REDIS_CLUSTER_URL`, e.g.
//! `redis+cluster://127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003`).

mod harness;

fn main() {
    harness::suite(
        "redis-cluster",
        "KV_TEST_REDIS_CLUSTER_URL",
        "cargo xtask services up redis-cluster",
        Vec::new(),
    )
    .run()
}
