//! The core of [kv](https://docs.rs/kv): one key-value API for every store.
//!
//! This crate holds what every backend and layer shares:
//! - [`KvStore`], the trait every store implements (static dispatch, `impl Future + Send`
//!   methods, one per operation, each with an options struct), its object-safe twin
//!   [`DynKvStore`] and the handle type [`DynStore`];
//! - [`KvStoreExt`], the convenience API every store gets for free (typed values, dict-like
//!   helpers, streams), [`Collection`], a typed view of one collection, and [`SyncStore`],
//!   the same API with blocking methods;
//! - the data model ([`Entry`], [`Timestamp`], [`Version`], [`Ttl`]), [`Capability`] and
//!   [`Error`];
//! - codecs ([`Codec`]), the native [`envelope`] and the py-key-value [`format::pykv`] format;
//! - [`search`]: keys by glob or regex, entries by conditions on JSON fields, pushed down
//!   to stores that filter natively;
//! - [`snapshot`]: save a store to a file, load it back, copy between any two stores;
//! - helpers stores share: [`ttl`] rules, [`scan`] paging, [`fallback`] batches, store
//!   [`url`]s.
//!
//! ```
//! use kv_core::{KvStore, KvStoreExt, Result};
//!
//! // Library code is written once, against any store.
//! async fn remember_login(store: &impl KvStore, user: &str) -> Result<u64> {
//!     let count: u64 = store.get("logins", user).await?.unwrap_or(0);
//!     store.put("logins", user, &(count + 1)).await?;
//!     Ok(count + 1)
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod capability;
mod codec;
mod collection;
mod dyn_store;
mod entry;
mod error;
mod ext;
mod iso8601;
mod layer;
mod options;
mod store;
mod time;
mod typed;

pub mod envelope;
pub mod fallback;
pub mod format;
pub mod scan;
pub mod search;
pub mod snapshot;
pub mod sync;
pub mod ttl;
pub mod url;

pub use bytes::Bytes;
pub use capability::Capability;
pub use codec::Codec;
pub use collection::Collection;
pub use dyn_store::{BoxFuture, DynKvStore, DynStore};
pub use entry::{Entry, Ttl, Version};
pub use error::{Error, ErrorKind, Operation, Result};
pub use ext::KvStoreExt;
pub use layer::Layer;
pub use options::{
    ClearOptions, CollectionsOptions, CullOptions, Cursor, DEFAULT_PAGE_SIZE, DeleteOptions,
    DestroyOptions, GetOptions, PutManyOptions, PutMode, PutOptions, ScanItem, ScanOptions,
    ScanPage,
};
pub use store::{DEFAULT_COLLECTION, KvStore, StoreInfo};
pub use sync::SyncStore;
pub use time::Timestamp;

/// Everything a user of kv needs in scope: `use kv_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Codec, Collection, DynStore, Entry, Error, ErrorKind, KvStore, KvStoreExt, PutMode,
        PutOptions, Result, ScanOptions, Ttl,
    };
}
