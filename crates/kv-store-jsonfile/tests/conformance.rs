//! The whole kv-conformance suite against the jsonfile store with its default, durable writes
//! (`Durability::Immediate`).

mod harness;

use kv_store_jsonfile::Durability;

fn main() {
    harness::suite("jsonfile", Durability::Immediate).run()
}
