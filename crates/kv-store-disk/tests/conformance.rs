//! The whole kv-conformance suite against the disk store with its default, durable writes
//! (`Durability::Immediate`).

mod harness;

use kv_store_disk::Durability;

fn main() {
    harness::suite("disk", Durability::Immediate).run()
}
