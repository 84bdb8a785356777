//! The whole conformance suite through the encryption layer (XChaCha20-Poly1305, strict: no
//! plaintext allowed) with a rotated key set, around the memory store.
//!
//! No corrupt hook: the suite's corrupt-bytes cases expect TTL reads to fail too, which holds
//! for a store's metadata envelope but not for this layer (a tampered value leaves the entry's
//! TTL intact, and `ttl` does not read the value). Tampered, moved and unknown-key values are
//! covered by the module's unit tests (get, get_many, scans, overwrite and delete).

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::encryption::EncryptionLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("encryption", || async {
        let layer = EncryptionLayer::new(2, [0x22; 32]).with_key(1, [0x11; 32]);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
