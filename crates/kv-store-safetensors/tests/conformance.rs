//! The whole kv-conformance suite against the read-write store on a file, with its default
//! durability (the file is written on flush/close), plus the corrupt and reopen hooks.

mod harness;

use kv_store_safetensors::Durability;

fn main() {
    harness::suite("safetensors", Durability::Flush).run()
}
