//! The whole kv-conformance suite against the filetree store with its default, durable writes
//! (`Durability::Immediate`).

mod harness;

use kv_store_filetree::Durability;

fn main() {
    harness::suite("filetree", Durability::Immediate).run()
}
