//! The whole kv-conformance suite against the log store with its default, durable writes
//! (every write `fsync`ed).

mod harness;

fn main() {
    harness::suite("log", true).run()
}
