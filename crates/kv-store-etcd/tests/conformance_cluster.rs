//! The whole kv-conformance suite against a real 3-member etcd cluster
//! (`KV_TEST_ETCD_CLUSTER_URL`, e.g. `etcd://127.0.0.1:12381,127.0.0.1:12383,127.0.0.1:12385`).

mod common;

fn main() {
    common::suite(
        "etcd-cluster",
        "KV_TEST_ETCD_CLUSTER_URL",
        "cargo xtask services up etcd-cluster",
    )
    .run()
}
