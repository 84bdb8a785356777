//! The whole kv-conformance suite against the disk store with `durability=none`, where small
//! writes run on the calling thread instead of the blocking pool. The persistence cases are
//! skipped: such a store does not declare itself durable.

mod harness;

use kv_store_disk::Durability;

fn main() {
    harness::suite("disk-durability-none", Durability::None).run()
}
