//! The whole kv-conformance suite against Valkey (`KV_TEST_VALKEY_URL`, e.g.
//! `valkey://127.0.0.1:16381`).

mod harness;

fn main() {
    harness::suite(
        "valkey",
        "KV_TEST_VALKEY_URL",
        "cargo xtask services up valkey",
        Vec::new(),
    )
    .run()
}
