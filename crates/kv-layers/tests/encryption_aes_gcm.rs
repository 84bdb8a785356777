//! The whole conformance suite through the encryption layer writing AES-256-GCM (strict: no
//! plaintext allowed) with a rotated key set, around the memory store.
//!
//! No corrupt hook, for the reason given in `tests/encryption.rs`; tampered, moved and
//! unknown-key AES-256-GCM values are covered by the module's unit tests.

use std::sync::Arc;

use kv_conformance::Suite;
use kv_core::DynStore;
use kv_layers::StoreLayerExt;
use kv_layers::encryption::EncryptionLayer;
use kv_store_memory::MemoryStore;

fn main() {
    Suite::new("encryption-aes-gcm", || async {
        let layer = EncryptionLayer::new(2, [0x22; 32])
            .aes_256_gcm()
            .with_key(1, [0x11; 32]);
        Ok(Arc::new(MemoryStore::new().with(layer)) as DynStore)
    })
    .run()
}
