//! The whole kv-conformance suite against a real single-node etcd (`KV_TEST_ETCD_URL`, e.g.
//! `etcd://127.0.0.1:12379`).

mod common;

fn main() {
    common::suite("etcd", "KV_TEST_ETCD_URL", "cargo xtask services up etcd").run()
}
