//! The whole kv-conformance suite against the read-write store on a file with
//! `durability=immediate` (every write rewrites the file), so the persistence cases run.

mod harness;

use kv_store_safetensors::Durability;

fn main() {
    harness::suite("safetensors-immediate", Durability::Immediate).run()
}
