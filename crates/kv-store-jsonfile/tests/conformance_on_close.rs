//! The whole kv-conformance suite against the jsonfile store with `durability=on_close` (the
//! file is written at flush, close and drop). The persistence cases are skipped: such a store
//! does not declare itself durable.

mod harness;

use kv_store_jsonfile::Durability;

fn main() {
    harness::suite("jsonfile-on-close", Durability::OnClose).run()
}
