//! The whole kv-conformance suite against a standalone Redis server (`KV_TEST_REDIS_URL`,
//! e.g. `redis://127.0.0.1:16379`).

mod harness;

fn main() {
    harness::suite(
        "redis",
        "KV_TEST_REDIS_URL",
        "cargo xtask services up redis",
        Vec::new(),
    )
    .run()
}
