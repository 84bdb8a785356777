//! Rejects every write: puts, deletes, `clear`, `destroy` and `cull` fail with
//! [`ErrorKind::ReadOnly`] (naming the layer, operation, collection and key), or, with
//! [`ReadOnlyLayer::ignore_writes`], are silently dropped (as py-key-value's
//! `ReadOnlyWrapper(raise_on_write=False)`: a put does nothing, a delete reports `false`).
//! Reads pass through.
//!
//! A [`ReadOnlySwitch`] turns the restriction on and off at run time (a maintenance window).
//!
//! ```
//! use kv_core::{ErrorKind, KvStore, KvStoreExt};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::read_only::ReadOnlyLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let data = MemoryStore::new();
//! data.put("config", "mode", &"live").await?;
//! let view = data.with(ReadOnlyLayer::new());
//! assert_eq!(view.get::<String>("config", "mode").await?.as_deref(), Some("live"));
//! let err = view.put("config", "mode", &"test").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::ReadOnly);
//! assert!(view.info().capability.read_only);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use kv_core::{
    ClearOptions, CullOptions, DeleteOptions, DestroyOptions, Error, ErrorKind, KvStore, Layer,
    Operation, PutManyOptions, PutOptions, Result, StoreInfo,
};

const LAYER: &str = "read-only";

/// Turns a [`ReadOnly`] store's restriction on and off at run time; clones share the state.
///
/// ```
/// use kv_core::KvStoreExt;
/// use kv_layers::StoreLayerExt;
/// use kv_layers::read_only::{ReadOnlyLayer, ReadOnlySwitch};
/// use kv_store_memory::MemoryStore;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let maintenance = ReadOnlySwitch::new(false);
/// let store = MemoryStore::new().with(ReadOnlyLayer::new().switch(maintenance.clone()));
/// store.put("c", "k", &1).await?;
/// maintenance.set(true);
/// assert!(store.put("c", "k", &2).await.is_err());
/// # Ok::<(), kv_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct ReadOnlySwitch(Arc<AtomicBool>);

impl ReadOnlySwitch {
    /// A switch, on (writes restricted) or off.
    pub fn new(on: bool) -> Self {
        ReadOnlySwitch(Arc::new(AtomicBool::new(on)))
    }

    /// Turns the restriction on or off.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }

    /// Whether writes are restricted now.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The configuration of a [`ReadOnly`] store.
#[derive(Clone, Debug, Default)]
pub struct ReadOnlyLayer {
    ignore: bool,
    switch: Option<ReadOnlySwitch>,
}

impl ReadOnlyLayer {
    /// Every write fails with [`ErrorKind::ReadOnly`].
    ///
    /// ```
    /// let layer = kv_layers::read_only::ReadOnlyLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes succeed without doing anything instead: puts return `Ok(())`, deletes `false`
    /// (or 0), `clear` and `cull` 0.
    ///
    /// ```
    /// let layer = kv_layers::read_only::ReadOnlyLayer::new().ignore_writes();
    /// # let _ = layer;
    /// ```
    pub fn ignore_writes(mut self) -> Self {
        self.ignore = true;
        self
    }

    /// Restricts writes only while `switch` is on. The store's
    /// [`Capability::read_only`](kv_core::Capability::read_only) is then `false`, since
    /// writes may be accepted; callers must expect `ReadOnly` errors while it is on.
    ///
    /// ```
    /// use kv_layers::read_only::{ReadOnlyLayer, ReadOnlySwitch};
    /// let layer = ReadOnlyLayer::new().switch(ReadOnlySwitch::new(true));
    /// # let _ = layer;
    /// ```
    pub fn switch(mut self, switch: ReadOnlySwitch) -> Self {
        self.switch = Some(switch);
        self
    }
}

impl<S: KvStore> Layer<S> for ReadOnlyLayer {
    type Store = ReadOnly<S>;

    fn layer(&self, inner: S) -> ReadOnly<S> {
        let mut info = inner.info().clone();
        if self.switch.is_none() {
            let cap = &mut info.capability;
            cap.read_only = true;
            if !self.ignore {
                cap.if_absent = false;
                cap.compare_and_swap = false;
                cap.clear = false;
                cap.destroy = false;
            }
        }
        ReadOnly {
            inner,
            ignore: self.ignore,
            switch: self.switch.clone(),
            closed: Arc::new(AtomicBool::new(false)),
            info,
        }
    }
}

/// A store that rejects (or ignores) writes; see [`ReadOnlyLayer`].
#[derive(Clone, Debug)]
pub struct ReadOnly<S> {
    inner: S,
    ignore: bool,
    switch: Option<ReadOnlySwitch>,
    /// Set by `close` (on any clone): writes then fail with `Closed`, like the store's own
    /// operations, rather than `ReadOnly`.
    closed: Arc<AtomicBool>,
    info: StoreInfo,
}

/// What a guarded write does.
enum Gate {
    /// Run it.
    Pass,
    /// Pretend it succeeded without changing anything.
    Skip,
}

impl<S> ReadOnly<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::read_only::ReadOnlyLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(ReadOnlyLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn gate(&self, op: Operation, collection: Option<&str>, key: Option<&str>) -> Result<Gate> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the store was closed")
                .with_context(LAYER, op, collection, key));
        }
        if self.switch.as_ref().is_some_and(|s| !s.is_on()) {
            return Ok(Gate::Pass);
        }
        if self.ignore {
            return Ok(Gate::Skip);
        }
        Err(Error::new(
            ErrorKind::ReadOnly,
            "this store is read-only: writes are rejected",
        )
        .with_context(LAYER, op, collection, key))
    }
}

impl<S: KvStore> KvStore for ReadOnly<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        match self.gate(Operation::Put, Some(collection), Some(key))? {
            Gate::Pass => self.inner.put_opts(collection, key, value, opts).await,
            Gate::Skip => Ok(()),
        }
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        match self.gate(Operation::PutMany, Some(collection), None)? {
            Gate::Pass => self.inner.put_many_opts(collection, entries, opts).await,
            Gate::Skip => Ok(()),
        }
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        match self.gate(Operation::Delete, Some(collection), Some(key))? {
            Gate::Pass => self.inner.delete_opts(collection, key, opts).await,
            Gate::Skip => Ok(false),
        }
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        match self.gate(Operation::DeleteMany, Some(collection), None)? {
            Gate::Pass => self.inner.delete_many_opts(collection, keys, opts).await,
            Gate::Skip => Ok(0),
        }
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        match self.gate(Operation::Clear, Some(collection), None)? {
            Gate::Pass => self.inner.clear_opts(collection, opts).await,
            Gate::Skip => Ok(0),
        }
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        match self.gate(Operation::Destroy, None, None)? {
            Gate::Pass => self.inner.destroy_opts(opts).await,
            Gate::Skip => Ok(()),
        }
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        match self.gate(Operation::Cull, None, None)? {
            Gate::Pass => self.inner.cull_opts(opts).await,
            Gate::Skip => Ok(0),
        }
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.inner.close().await
    }

    forward!(inner; get_opts, get_many_opts, ttl_opts, scan_opts, collections_opts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::{KvStoreExt, PutMode};
    use kv_store_memory::MemoryStore;

    async fn seeded() -> MemoryStore {
        let m = MemoryStore::new();
        m.put("c", "k", &1).await.unwrap();
        m
    }

    #[tokio::test]
    async fn every_write_is_rejected_with_context() {
        let s = seeded().await.with(ReadOnlyLayer::new());
        let err = s.put("c", "k", &2).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ReadOnly);
        assert!(!err.is_temporary());
        assert_eq!(err.store(), Some("read-only"));
        assert_eq!(err.operation(), Some(Operation::Put));
        assert_eq!((err.collection(), err.key()), (Some("c"), Some("k")));
        let ro = |r: Result<u64>| assert_eq!(r.unwrap_err().kind(), ErrorKind::ReadOnly);
        ro(s.delete_many("c", &["k"]).await);
        ro(s.clear("c").await);
        ro(s.cull().await);
        assert_eq!(
            s.delete("c", "k").await.unwrap_err().kind(),
            ErrorKind::ReadOnly
        );
        assert_eq!(s.destroy().await.unwrap_err().kind(), ErrorKind::ReadOnly);
        let cas = PutOptions::default().with_mode(PutMode::IfAbsent);
        let r = s.put_opts("c", "new", Bytes::from_static(b"1"), cas).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::ReadOnly);
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        assert_eq!(s.get::<i32>("c", "new").await.unwrap(), None);
        let cap = s.info().capability;
        assert!(cap.read_only && !cap.if_absent && !cap.compare_and_swap && !cap.clear);
    }

    #[tokio::test]
    async fn ignored_writes_change_nothing() {
        let s = seeded().await.with(ReadOnlyLayer::new().ignore_writes());
        s.put("c", "k", &2).await.unwrap();
        assert!(!s.delete("c", "k").await.unwrap());
        assert_eq!(s.clear("c").await.unwrap(), 0);
        s.destroy().await.unwrap();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn switch_turns_the_restriction_on_and_off() {
        let switch = ReadOnlySwitch::new(true);
        let s = seeded()
            .await
            .with(ReadOnlyLayer::new().switch(switch.clone()));
        assert!(!s.info().capability.read_only);
        assert!(s.put("c", "k", &2).await.is_err());
        switch.set(false);
        s.put("c", "k", &3).await.unwrap();
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(3));
        switch.set(true);
        assert!(s.delete("c", "k").await.is_err());
    }

    #[tokio::test]
    async fn writes_after_close_report_closed() {
        let s = seeded().await.with(ReadOnlyLayer::new().ignore_writes());
        s.clone().close().await.unwrap();
        assert_eq!(
            s.put("c", "k", &2).await.unwrap_err().kind(),
            ErrorKind::Closed
        );
    }
}
