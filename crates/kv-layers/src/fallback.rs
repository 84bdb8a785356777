//! Sends operations to a primary store and, when it fails with a temporary error, to a
//! fallback store.
//!
//! Reads (`get`, `get_many`, `ttl`, `scan`, `collections`) fall back on a temporary error.
//! Writes (puts, deletes, `clear`) go to the primary only, unless
//! [`write_to_fallback`](FallbackLayer::write_to_fallback) is set: then a write that fails
//! with a temporary error is sent to the fallback instead (as py-key-value's
//! `FallbackWrapper(write_to_fallback=True)`). Permanent errors (an invalid key, a failed
//! condition) are never hidden by the fallback.
//!
//! A scan stays on the store it started on: its cursors say which one, so a scan that
//! started on the fallback continues there even once the primary is back. `cull` and `close`
//! reach both stores; `destroy` reaches the fallback only with `write_to_fallback`. The
//! store describes itself with the primary's [`StoreInfo`].
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::fallback::FallbackLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let replica = MemoryStore::new();
//! replica.put("c", "k", &1).await?;
//! let store = MemoryStore::new().with(FallbackLayer::new(replica));
//! // The primary answers (a miss); the replica is asked only when the primary fails.
//! assert_eq!(store.get::<i32>("c", "k").await?, None);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use bytes::Bytes;
use kv_core::{
    ClearOptions, CollectionsOptions, CullOptions, Cursor, DeleteOptions, DestroyOptions, Entry,
    Error, ErrorKind, GetOptions, KvStore, Layer, PutManyOptions, PutOptions, Result, ScanOptions,
    ScanPage, StoreInfo, Ttl,
};

/// The configuration of a [`Fallback`] store: the fallback store and whether writes use it.
#[derive(Clone, Debug)]
pub struct FallbackLayer<F> {
    fallback: F,
    write_to_fallback: bool,
}

impl<F> FallbackLayer<F> {
    /// Reads fall back to `fallback` when the primary fails with a temporary error.
    ///
    /// ```
    /// let layer = kv_layers::fallback::FallbackLayer::new(kv_store_memory::MemoryStore::new());
    /// # let _ = layer;
    /// ```
    pub fn new(fallback: F) -> Self {
        FallbackLayer {
            fallback,
            write_to_fallback: false,
        }
    }

    /// Writes fall back too.
    ///
    /// ```
    /// use kv_layers::fallback::FallbackLayer;
    /// let layer = FallbackLayer::new(kv_store_memory::MemoryStore::new()).write_to_fallback(true);
    /// # let _ = layer;
    /// ```
    pub fn write_to_fallback(mut self, yes: bool) -> Self {
        self.write_to_fallback = yes;
        self
    }
}

impl<S: KvStore, F: KvStore + Clone> Layer<S> for FallbackLayer<F> {
    type Store = Fallback<S, F>;

    fn layer(&self, primary: S) -> Fallback<S, F> {
        Fallback {
            primary,
            fallback: self.fallback.clone(),
            write_to_fallback: self.write_to_fallback,
        }
    }
}

/// A store with a fallback; see [`FallbackLayer`].
#[derive(Clone, Debug)]
pub struct Fallback<S, F> {
    primary: S,
    fallback: F,
    write_to_fallback: bool,
}

impl<S, F> Fallback<S, F> {
    /// The primary store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::fallback::FallbackLayer;
    /// use kv_store_memory::MemoryStore;
    /// let store = MemoryStore::new().with(FallbackLayer::new(MemoryStore::new()));
    /// let _primary: &MemoryStore = store.primary();
    /// ```
    pub fn primary(&self) -> &S {
        &self.primary
    }

    /// The fallback store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::fallback::FallbackLayer;
    /// use kv_store_memory::MemoryStore;
    /// let store = MemoryStore::new().with(FallbackLayer::new(MemoryStore::new()));
    /// let _fallback: &MemoryStore = store.fallback();
    /// ```
    pub fn fallback(&self) -> &F {
        &self.fallback
    }
}

/// Runs `$op` on the primary, and on the fallback if the primary failed with a temporary
/// error (and `$when` holds).
macro_rules! with_fallback {
    ($self:ident, $when:expr, |$s:ident| $op:expr) => {{
        let first = {
            let $s = &$self.primary;
            $op.await
        };
        match first {
            Err(e) if e.is_temporary() && $when => {
                let $s = &$self.fallback;
                $op.await
            }
            r => r,
        }
    }};
}

const PRIMARY: char = 'p';
const SECONDARY: char = 'f';

fn tag(page: ScanPage, t: char) -> ScanPage {
    let cursor = page.cursor.map(|c| {
        let mut s = String::with_capacity(c.as_str().len() + 1);
        s.push(t);
        s.push_str(c.as_str());
        Cursor::new(s)
    });
    ScanPage::new(page.items, cursor)
}

impl<S: KvStore, F: KvStore> KvStore for Fallback<S, F> {
    fn info(&self) -> &StoreInfo {
        self.primary.info()
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        with_fallback!(self, true, |s| s.get_opts(collection, key, opts.clone()))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        with_fallback!(self, true, |s| s.get_many_opts(
            collection,
            keys,
            opts.clone()
        ))
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        with_fallback!(self, self.write_to_fallback, |s| s.put_opts(
            collection,
            key,
            value.clone(),
            opts.clone()
        ))
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        with_fallback!(self, self.write_to_fallback, |s| s.put_many_opts(
            collection,
            entries,
            opts.clone()
        ))
    }

    async fn delete_opts(&self, collection: &str, key: &str, opts: DeleteOptions) -> Result<bool> {
        with_fallback!(self, self.write_to_fallback, |s| s.delete_opts(
            collection,
            key,
            opts.clone()
        ))
    }

    async fn delete_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: DeleteOptions,
    ) -> Result<u64> {
        with_fallback!(self, self.write_to_fallback, |s| s.delete_many_opts(
            collection,
            keys,
            opts.clone()
        ))
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        with_fallback!(self, true, |s| s.ttl_opts(collection, key, opts.clone()))
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let Some(cursor) = opts.cursor.clone() else {
            let first = self.primary.scan_opts(collection, opts.clone()).await;
            return match first {
                Err(e) if e.is_temporary() => {
                    let page = self.fallback.scan_opts(collection, opts).await?;
                    Ok(tag(page, SECONDARY))
                }
                r => r.map(|p| tag(p, PRIMARY)),
            };
        };
        let mut chars = cursor.as_str().chars();
        let which = chars.next();
        let inner = Some(Cursor::new(chars.as_str()));
        match which {
            Some(PRIMARY) => {
                let page = self.primary.scan_opts(collection, opts.with_cursor(inner));
                Ok(tag(page.await?, PRIMARY))
            }
            Some(SECONDARY) => {
                let page = self.fallback.scan_opts(collection, opts.with_cursor(inner));
                Ok(tag(page.await?, SECONDARY))
            }
            _ => Err(Error::new(
                ErrorKind::InvalidArgument,
                "scan cursor was not produced by this store",
            )
            .with_context("fallback", kv_core::Operation::Scan, Some(collection), None)),
        }
    }

    async fn collections_opts(&self, opts: CollectionsOptions) -> Result<Vec<String>> {
        with_fallback!(self, true, |s| s.collections_opts(opts.clone()))
    }

    async fn clear_opts(&self, collection: &str, opts: ClearOptions) -> Result<u64> {
        with_fallback!(self, self.write_to_fallback, |s| s
            .clear_opts(collection, opts.clone()))
    }

    async fn destroy_opts(&self, opts: DestroyOptions) -> Result<()> {
        self.primary.destroy_opts(opts.clone()).await?;
        if self.write_to_fallback {
            self.fallback.destroy_opts(opts).await?;
        }
        Ok(())
    }

    async fn cull_opts(&self, opts: CullOptions) -> Result<u64> {
        let n = self.primary.cull_opts(opts.clone()).await?;
        Ok(n + self.fallback.cull_opts(opts).await?)
    }

    async fn close(&self) -> Result<()> {
        let first = self.primary.close().await;
        let second = self.fallback.close().await;
        first.and(second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use crate::testutil::{Flaky, keys};
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    async fn setup(write: bool) -> (Flaky, MemoryStore, Fallback<Flaky, MemoryStore>) {
        let primary = Flaky::new();
        let backup = MemoryStore::new();
        primary.put("c", "k", &1).await.unwrap();
        backup.put("c", "k", &2).await.unwrap();
        backup.put("c", "k2", &2).await.unwrap();
        let s = primary
            .clone()
            .with(FallbackLayer::new(backup.clone()).write_to_fallback(write));
        (primary, backup, s)
    }

    #[tokio::test]
    async fn reads_fall_back_on_temporary_errors_only() {
        let (primary, _, s) = setup(false).await;
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(1));
        primary.fail_next(1);
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(2));
        primary.permanent(true);
        primary.fail_next(1);
        assert_eq!(
            s.get::<i32>("c", "k").await.unwrap_err().kind(),
            ErrorKind::Backend
        );
    }

    #[tokio::test]
    async fn writes_fall_back_only_when_asked() {
        let (primary, backup, s) = setup(false).await;
        primary.fail_next(1);
        assert!(s.put("c", "w", &3).await.is_err());
        assert_eq!(backup.get::<i32>("c", "w").await.unwrap(), None);

        let (primary, backup, s) = setup(true).await;
        primary.fail_next(1);
        s.put("c", "w", &3).await.unwrap();
        assert_eq!(backup.get::<i32>("c", "w").await.unwrap(), Some(3));
    }

    #[tokio::test]
    async fn a_scan_stays_on_the_store_it_started_on() {
        let (primary, _, s) = setup(false).await;
        primary.fail_next(1);
        let page = s
            .scan_opts("c", ScanOptions::default().keys_only().with_page_size(1))
            .await
            .unwrap();
        assert_eq!(page.items[0].key, "k");
        // The primary is back, but the scan continues on the fallback, which has k2.
        let page = s
            .scan_opts(
                "c",
                ScanOptions::default()
                    .keys_only()
                    .with_page_size(1)
                    .with_cursor(page.cursor),
            )
            .await
            .unwrap();
        assert_eq!(page.items[0].key, "k2");
        assert_eq!(keys(&s, "c").await, vec!["k"]);
    }
}
