//! The whole kv-conformance suite against the multidisk store with its default, durable
//! writes (`Durability::Immediate`).

mod harness;

use kv_store_multidisk::Durability;

fn main() {
    harness::suite("multidisk", Durability::Immediate).run()
}
