//! The whole kv-conformance suite against the UnQLite store (every write one committed transaction).

mod harness;

fn main() {
    harness::suite("unqlite").run()
}
