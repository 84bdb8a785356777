//! Layers compose statically, apply to a `DynStore`, and a stack can be erased once.

use std::sync::Arc;
use std::time::Duration;

use kv_core::{DynStore, KvStore, KvStoreExt, Ttl};
use kv_layers::StoreLayerExt;
use kv_layers::prefix_collections::PrefixCollectionsLayer;
use kv_layers::prefix_keys::PrefixKeysLayer;
use kv_layers::read_only::ReadOnlyLayer;
use kv_layers::single_collection::SingleCollectionLayer;
use kv_layers::ttl_clamp::TtlClampLayer;
use kv_store_memory::MemoryStore;

#[tokio::test]
async fn static_stack_erased_once() {
    let memory = MemoryStore::new();
    let stack = memory
        .clone()
        .with(TtlClampLayer::new().default_ttl(Duration::from_secs(60)))
        .with(PrefixKeysLayer::new("app"));
    let store: DynStore = Arc::new(stack);
    store.put("c", "k", &1).await.unwrap();
    assert_eq!(memory.get::<i32>("c", "app__k").await.unwrap(), Some(1));
    assert!(matches!(
        store.ttl("c", "k").await.unwrap(),
        Some(Ttl::Remaining(_))
    ));
}

#[tokio::test]
async fn layers_apply_to_a_dyn_store() {
    let memory = MemoryStore::new();
    let erased: DynStore = Arc::new(memory.clone());
    let store = erased
        .with(SingleCollectionLayer::new("one"))
        .with(PrefixCollectionsLayer::new("p"));
    store.put("c", "k", &1).await.unwrap();
    assert_eq!(
        memory.get::<i32>("one", "p%5F_c__k").await.unwrap(),
        Some(1)
    );
    assert_eq!(store.collections().await.unwrap(), vec!["c".to_owned()]);

    let ro = store.clone().with(ReadOnlyLayer::new());
    assert!(ro.info().capability.read_only);
    assert!(ro.put("c", "k", &2).await.is_err());
    assert_eq!(ro.get::<i32>("c", "k").await.unwrap(), Some(1));
}
