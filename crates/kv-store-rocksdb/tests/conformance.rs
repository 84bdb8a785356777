//! The whole kv-conformance suite against the RocksDB store with its default, synced writes.

mod harness;

fn main() {
    harness::suite("rocksdb", true).run()
}
