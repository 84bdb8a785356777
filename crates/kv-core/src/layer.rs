//! Tower-style layers: a [`Layer`] wraps a store into another store.

use crate::KvStore;

/// Wraps a store `S` into a new store, e.g. adding TTL clamping, a key prefix or retries.
///
/// Layers compose statically (`outer.layer(inner.layer(store))`, monomorphised, no boxing)
/// and also apply to a [`DynStore`](crate::DynStore), which is itself a [`KvStore`].
///
/// ```
/// use kv_core::{Layer, KvStore};
///
/// /// A layer that does nothing: the smallest possible example.
/// struct Identity;
///
/// impl<S: KvStore> Layer<S> for Identity {
///     type Store = S;
///     fn layer(&self, inner: S) -> S {
///         inner
///     }
/// }
/// ```
pub trait Layer<S> {
    /// The wrapped store.
    type Store: KvStore;

    /// Wraps `inner`.
    fn layer(&self, inner: S) -> Self::Store;
}
