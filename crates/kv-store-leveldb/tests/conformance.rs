//! The whole kv-conformance suite against the LevelDB store with its default, synced writes.

mod harness;

fn main() {
    harness::suite("leveldb", true).run()
}
