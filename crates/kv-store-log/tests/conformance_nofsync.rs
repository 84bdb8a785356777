//! The whole kv-conformance suite against the log store with `fsync=false` (writes run on the
//! calling thread). The persistence cases are skipped: such a store is not declared durable.

mod harness;

fn main() {
    harness::suite("log-nofsync", false).run()
}
