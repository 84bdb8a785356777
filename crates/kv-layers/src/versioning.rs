//! Tags every value with a schema version, and reads values with another tag (or none) as
//! missing.
//!
//! When the shape of stored values changes (a field renamed, a unit changed), bump the tag:
//! entries written by the old code become misses, and a cache-like program recomputes them
//! instead of failing to decode them. This is py-key-value's unmerged `VersioningWrapper`,
//! which stored `{"__version__": v, "__versioned_data__": value}`; here the tag is a binary
//! header, so any value (not only JSON objects) can be tagged, and untagged values are never
//! mistaken for tagged ones.
//!
//! # Format
//!
//! | bytes | content |
//! |---|---|
//! | 1 | magic `0xC4` |
//! | 1 | `n`, the tag's length in bytes, `0x01..=0x7F` |
//! | `n` | the tag, UTF-8 |
//! | rest | the value, unchanged |
//!
//! `0xC4` followed by a byte below `0x80` never occurs in valid UTF-8 (`0xC4` starts a
//! two-byte sequence whose second byte is `0x80..=0xBF`), so no JSON document, string or
//! number written without the layer starts with a header. The magic differs from the
//! [envelope](kv_core::envelope)'s `0xC1`, [compression](crate::compression)'s `0xC2` and
//! [encryption](crate::encryption)'s `0xC3`. (In MessagePack, `0xC4` starts a short binary
//! string: only a bare MessagePack binary value whose bytes are exactly a header of this tag
//! could be taken for a tagged empty value.)
//!
//! # What each operation does
//!
//! - `put`, `put_many` tag the values they write.
//! - `get`, `get_many` and scans return only values carrying this layer's tag, without it;
//!   others are misses (`None`, a `None` slot, skipped by scans). Scans therefore always read
//!   values from the inner store, keys-only ones included (values are then dropped), and a
//!   page may hold fewer items than asked — only its cursor says whether more follow. A
//!   [search filter](kv_core::ScanOptions::filter) is not passed down, as the inner store sees
//!   tagged bytes.
//! - `ttl` is a read: an entry with another tag has none (`Ok(None)`). It reads the entry first,
//!   then its TTL (two inner calls).
//! - An if-absent put treats an entry with another tag as absent and replaces it, atomically
//!   with compare-and-swap where the inner store has it (otherwise by deleting it and retrying
//!   the if-absent put, which two racing writers may both win). If-version puts pass through:
//!   versions are only handed out for entries with this tag.
//! - `delete`, `delete_many` and `clear` remove what is stored whatever its tag — they are how
//!   old entries are cleaned up — so their counts may include entries reads did not return.
//!   `collections`, `cull`, `destroy` and `close` pass through.
//!
//! The store's [`Capability::max_value_len`](kv_core::Capability::max_value_len) shrinks by the
//! header length, and longer values are rejected with [`ErrorKind::ValueTooLarge`].
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::versioning::VersioningLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let memory = MemoryStore::new();
//! let v1 = memory.clone().with(VersioningLayer::new(1)?);
//! v1.put("users", "alice", &"30 years").await?;
//!
//! // The schema changed: version 2 does not see version 1's entries...
//! let v2 = memory.clone().with(VersioningLayer::new(2)?);
//! assert_eq!(v2.get::<u32>("users", "alice").await?, None);
//! // ...so it recomputes and stores them in the new shape.
//! let age = v2.get_or_insert_with("users", "alice", || async { Ok(30u32) }).await?;
//! assert_eq!(age, 30);
//! assert_eq!(v2.get::<u32>("users", "alice").await?, Some(30));
//! assert_eq!(&memory.get_bytes("users", "alice").await?.unwrap()[..3], &[0xC4, 1, b'2']);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::fmt;

use bytes::{Bytes, BytesMut};
use kv_core::{
    DeleteOptions, Entry, Error, ErrorKind, GetOptions, KvStore, Layer, Operation, PutManyOptions,
    PutMode, PutOptions, Result, ScanOptions, ScanPage, StoreInfo, Ttl,
};

const LAYER: &str = "versioning";

/// First byte of every tagged value.
pub const MAGIC: u8 = 0xC4;
/// The longest tag, in bytes (the length byte stays below `0x80`).
pub const MAX_TAG_LEN: usize = 0x7F;

/// The configuration of a [`Versioned`] store: the schema version tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersioningLayer {
    /// `MAGIC`, the tag's length and the tag: what every stored value starts with.
    header: Bytes,
}

impl VersioningLayer {
    /// Tags values with `version`'s text (`1`, `"v2"`, `"2026-03"`; the number `3` and the
    /// string `"3"` are the same tag). Fails with [`ErrorKind::Config`] if the text is empty
    /// or longer than [`MAX_TAG_LEN`] bytes.
    ///
    /// ```
    /// use kv_layers::versioning::VersioningLayer;
    /// let layer = VersioningLayer::new("users-v2")?;
    /// assert_eq!(layer.tag(), "users-v2");
    /// assert!(VersioningLayer::new("").is_err());
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn new(version: impl fmt::Display) -> Result<Self> {
        let tag = version.to_string();
        if tag.is_empty() || tag.len() > MAX_TAG_LEN {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "a schema version tag is 1 to {MAX_TAG_LEN} bytes long, not {}",
                    tag.len()
                ),
            )
            .with_store(LAYER));
        }
        let mut header = Vec::with_capacity(2 + tag.len());
        header.push(MAGIC);
        header.push(tag.len() as u8);
        header.extend_from_slice(tag.as_bytes());
        Ok(VersioningLayer {
            header: Bytes::from(header),
        })
    }

    /// The tag.
    ///
    /// ```
    /// let layer = kv_layers::versioning::VersioningLayer::new(7)?;
    /// assert_eq!(layer.tag(), "7");
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn tag(&self) -> &str {
        // The header was built from a `String`; the fallback is unreachable.
        std::str::from_utf8(&self.header[2..]).unwrap_or_default()
    }

    /// `value` with the header in front.
    fn tagged(&self, value: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(self.header.len() + value.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(value);
        out.freeze()
    }

    /// The value of a stored form with this tag (zero-copy), or `None`.
    fn untagged(&self, stored: &Bytes) -> Option<Bytes> {
        stored
            .starts_with(&self.header)
            .then(|| stored.slice(self.header.len()..))
    }
}

impl<S: KvStore> Layer<S> for VersioningLayer {
    type Store = Versioned<S>;

    fn layer(&self, inner: S) -> Versioned<S> {
        let mut info = inner.info().clone();
        let cap = &mut info.capability;
        cap.max_value_len = crate::util::shrink(cap.max_value_len, self.header.len());
        Versioned {
            inner,
            config: self.clone(),
            info,
        }
    }
}

/// A store tagging values with a schema version; see [`VersioningLayer`] and the
/// [module documentation](self).
#[derive(Clone, Debug)]
pub struct Versioned<S> {
    inner: S,
    config: VersioningLayer,
    info: StoreInfo,
}

impl<S> Versioned<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::versioning::VersioningLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(VersioningLayer::new(1)?);
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The entry as this layer's caller sees it: untagged, or `None` for another tag.
    fn visible(&self, mut entry: Entry) -> Option<Entry> {
        entry.value = self.config.untagged(&entry.value)?;
        Some(entry)
    }

    fn tag_checked(
        &self,
        value: &[u8],
        op: Operation,
        collection: &str,
        key: &str,
    ) -> Result<Bytes> {
        match self.info.capability.max_value_len {
            Some(max) if value.len() > max => Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "value of {} bytes is larger than the limit of {max} bytes",
                    value.len()
                ),
            )
            .with_context(LAYER, op, Some(collection), Some(key))),
            _ => Ok(self.config.tagged(value)),
        }
    }
}

impl<S: KvStore> Versioned<S> {
    /// An if-absent put found an entry: if it has another tag, it counts as absent and is
    /// replaced; otherwise the put fails with `failed`.
    async fn replace_other_version(
        &self,
        collection: &str,
        key: &str,
        stored: Bytes,
        ttl: Option<std::time::Duration>,
        failed: Error,
    ) -> Result<()> {
        let if_absent = PutOptions::default()
            .with_ttl_opt(ttl)
            .with_mode(PutMode::IfAbsent);
        let Some(existing) = self
            .inner
            .get_opts(collection, key, GetOptions::default())
            .await?
        else {
            // Removed meanwhile: absent now.
            return self
                .inner
                .put_opts(collection, key, stored, if_absent)
                .await;
        };
        if self.config.untagged(&existing.value).is_some() {
            return Err(failed);
        }
        match existing.version {
            Some(version) if self.inner.info().capability.compare_and_swap => {
                let cas = PutOptions::default()
                    .with_ttl_opt(ttl)
                    .with_mode(PutMode::IfVersion(version));
                self.inner.put_opts(collection, key, stored, cas).await
            }
            _ => {
                self.inner
                    .delete_opts(collection, key, DeleteOptions::default())
                    .await?;
                self.inner
                    .put_opts(collection, key, stored, if_absent)
                    .await
            }
        }
    }
}

impl<S: KvStore> KvStore for Versioned<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let entry = self.inner.get_opts(collection, key, opts).await?;
        Ok(entry.and_then(|e| self.visible(e)))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let entries = self.inner.get_many_opts(collection, keys, opts).await?;
        Ok(entries
            .into_iter()
            .map(|e| e.and_then(|e| self.visible(e)))
            .collect())
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let stored = self.tag_checked(&value, Operation::Put, collection, key)?;
        if opts.mode != PutMode::IfAbsent {
            return self.inner.put_opts(collection, key, stored, opts).await;
        }
        let ttl = opts.ttl;
        match self
            .inner
            .put_opts(collection, key, stored.clone(), opts)
            .await
        {
            Err(e) if e.kind() == ErrorKind::ConditionFailed => {
                self.replace_other_version(collection, key, stored, ttl, e)
                    .await
            }
            other => other,
        }
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let stored = entries
            .iter()
            .map(|(key, value)| {
                let v = self.tag_checked(value, Operation::PutMany, collection, key)?;
                Ok((*key, v))
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner.put_many_opts(collection, &stored, opts).await
    }

    async fn ttl_opts(&self, collection: &str, key: &str, opts: GetOptions) -> Result<Option<Ttl>> {
        match self.get_opts(collection, key, opts.clone()).await? {
            None => Ok(None),
            Some(_) => self.inner.ttl_opts(collection, key, opts).await,
        }
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        let keys_only = opts.keys_only;
        let mut inner_opts = opts.without_filter();
        inner_opts.keys_only = false;
        let mut page = self.inner.scan_opts(collection, inner_opts).await?;
        page.items.retain_mut(|item| {
            let visible = item.entry.take().and_then(|e| self.visible(e));
            let keep = visible.is_some();
            item.entry = if keys_only { None } else { visible };
            keep
        });
        Ok(page)
    }

    forward!(inner; delete_opts, delete_many_opts, collections_opts, clear_opts, destroy_opts,
        cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::{Capability, KvStoreExt};
    use kv_store_memory::MemoryStore;
    use std::time::Duration;

    fn layer(v: impl fmt::Display) -> VersioningLayer {
        VersioningLayer::new(v).unwrap()
    }

    #[tokio::test]
    async fn values_are_stored_with_the_header() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(layer("v2"));
        s.put_bytes("c", "k", "hello").await.unwrap();
        let stored = memory.get_bytes("c", "k").await.unwrap().unwrap();
        assert_eq!(&stored[..], b"\xC4\x02v2hello");
        assert_eq!(s.get_bytes("c", "k").await.unwrap().unwrap(), &b"hello"[..]);
        s.put_bytes("c", "empty", "").await.unwrap();
        assert_eq!(s.get_bytes("c", "empty").await.unwrap().unwrap(), &b""[..]);
    }

    #[tokio::test]
    async fn other_tags_and_untagged_values_are_misses() {
        let memory = MemoryStore::new();
        let v1 = memory.clone().with(layer(1));
        let v2 = memory.clone().with(layer(2));
        let v12 = memory.clone().with(layer(12));
        v1.put("c", "one", &1).await.unwrap();
        memory.put("c", "plain", &0).await.unwrap();
        memory.put_bytes("c", "bare", &[MAGIC][..]).await.unwrap();
        memory
            .put_bytes("c", "short", &[MAGIC, 2, b'2'][..])
            .await
            .unwrap();
        v2.put("c", "two", &2).await.unwrap();
        for key in ["one", "plain", "bare", "short", "missing"] {
            assert_eq!(v2.get::<i32>("c", key).await.unwrap(), None, "{key}");
            assert_eq!(v2.ttl("c", key).await.unwrap(), None, "{key}");
        }
        assert_eq!(v2.get::<i32>("c", "two").await.unwrap(), Some(2));
        // "1" is a prefix of "12", but the length byte tells them apart.
        assert_eq!(v12.get::<i32>("c", "one").await.unwrap(), None);
        let got = v2
            .get_many::<i32>("c", &["one", "two", "plain", "missing"])
            .await
            .unwrap();
        assert_eq!(got, vec![None, Some(2), None, None]);
        assert_eq!(v1.get::<i32>("c", "one").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn scans_skip_other_versions_even_keys_only() {
        let memory = MemoryStore::new();
        let v1 = memory.clone().with(layer(1));
        let v2 = memory.clone().with(layer(2));
        v1.put_many("c", &[("a", 1), ("c", 1)]).await.unwrap();
        v2.put_many("c", &[("b", 2), ("d", 2)]).await.unwrap();
        memory.put("c", "e", &0).await.unwrap();
        assert_eq!(crate::testutil::keys(&v2, "c").await, vec!["b", "d"]);
        let page = v2
            .scan_opts("c", ScanOptions::default().keys_only())
            .await
            .unwrap();
        assert!(page.items.iter().all(|i| i.entry.is_none()));
        let page = v2.scan_opts("c", ScanOptions::default()).await.unwrap();
        let values: Vec<&[u8]> = page
            .items
            .iter()
            .map(|i| &i.entry.as_ref().unwrap().value[..])
            .collect();
        assert_eq!(values, [b"2", b"2"]);
        // Small pages: some may be empty, the cursor still leads to every visible key.
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let opts = ScanOptions::default().with_page_size(1).with_cursor(cursor);
            let page = v2.scan_opts("c", opts).await.unwrap();
            keys.extend(page.items.into_iter().map(|i| i.key));
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(keys, ["b", "d"]);
    }

    #[tokio::test]
    async fn the_search_filter_is_not_passed_down() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(layer(1));
        s.put("c", "a", &serde_json::json!({"n": 1})).await.unwrap();
        let filter = kv_core::search::Filter::new().and(kv_core::search::Condition::eq("n", 1));
        let page = s
            .scan_opts("c", ScanOptions::default().with_filter(filter))
            .await
            .unwrap();
        // The memory store filters natively; with the filter on tagged bytes it would drop
        // the item, which must not happen (callers re-check every item).
        assert_eq!(page.items.len(), 1);
    }

    #[tokio::test]
    async fn if_absent_replaces_other_versions_only() {
        let memory = MemoryStore::new();
        let v1 = memory.clone().with(layer(1));
        let v2 = memory.clone().with(layer(2));
        v1.put("c", "k", &1).await.unwrap();
        assert!(v2.put_if_absent("c", "k", &2).await.unwrap());
        assert_eq!(v2.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert!(!v2.put_if_absent("c", "k", &3).await.unwrap());
        assert_eq!(v2.get::<i32>("c", "k").await.unwrap(), Some(2));
        // get_or_insert_with stores the recomputed value once.
        v1.put("c", "g", &1).await.unwrap();
        let got: i32 = v2
            .get_or_insert_with("c", "g", || async { Ok(5) })
            .await
            .unwrap();
        assert_eq!(got, 5);
        assert_eq!(v2.get::<i32>("c", "g").await.unwrap(), Some(5));
    }

    /// A memory store claiming no compare-and-swap, to exercise the delete-and-retry path.
    #[derive(Clone)]
    struct NoCas {
        inner: MemoryStore,
        info: StoreInfo,
    }

    impl KvStore for NoCas {
        fn info(&self) -> &StoreInfo {
            &self.info
        }
        forward!(inner; get_opts, get_many_opts, put_opts, put_many_opts, delete_opts,
            delete_many_opts, ttl_opts, scan_opts, collections_opts, clear_opts, destroy_opts,
            cull_opts, close);
    }

    #[tokio::test]
    async fn if_absent_without_cas_deletes_then_inserts() {
        let memory = MemoryStore::new();
        let mut info = memory.info().clone();
        info.capability = Capability {
            compare_and_swap: false,
            ..info.capability
        };
        let s = NoCas {
            inner: memory.clone(),
            info,
        }
        .with(layer(2));
        memory.with(layer(1)).put("c", "k", &1).await.unwrap();
        assert!(s.put_if_absent("c", "k", &2).await.unwrap());
        assert_eq!(s.get::<i32>("c", "k").await.unwrap(), Some(2));
        assert!(!s.put_if_absent("c", "k", &3).await.unwrap());
    }

    #[tokio::test]
    async fn ttl_of_a_visible_entry() {
        let s = MemoryStore::new().with(layer(1));
        s.put_with_ttl("c", "k", &1, Duration::from_secs(60))
            .await
            .unwrap();
        let ttl = s.ttl("c", "k").await.unwrap().unwrap().remaining().unwrap();
        assert!(ttl <= Duration::from_secs(60) && ttl > Duration::ZERO);
        s.put("c", "forever", &1).await.unwrap();
        assert_eq!(s.ttl("c", "forever").await.unwrap(), Some(Ttl::Never));
    }

    #[tokio::test]
    async fn deletes_and_clear_remove_every_version() {
        let memory = MemoryStore::new();
        let v1 = memory.clone().with(layer(1));
        let v2 = memory.clone().with(layer(2));
        v1.put_many("c", &[("a", 1), ("b", 1), ("c", 1)])
            .await
            .unwrap();
        assert!(v2.delete("c", "a").await.unwrap());
        assert_eq!(v2.delete_many("c", &["b"]).await.unwrap(), 1);
        assert_eq!(v2.clear("c").await.unwrap(), 1);
        assert!(memory.is_empty("c").await.unwrap());
    }

    #[tokio::test]
    async fn value_limit_shrinks_by_the_header() {
        let memory = MemoryStore::builder().build();
        let mut info = memory.info().clone();
        info.capability.max_value_len = Some(10);
        let s = NoCas {
            inner: memory,
            info,
        }
        .with(layer("ab"));
        assert_eq!(s.info().capability.max_value_len, Some(6));
        s.put_bytes("c", "ok", vec![0u8; 6]).await.unwrap();
        let err = s.put_bytes("c", "big", vec![0u8; 7]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
        assert_eq!((err.store(), err.key()), (Some(LAYER), Some("big")));
        let batch = [("big", Bytes::from(vec![0u8; 7]))];
        let err = s
            .put_many_opts("c", &batch, PutManyOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    }

    #[test]
    fn tags_are_one_to_127_bytes() {
        assert_eq!(layer("x".repeat(MAX_TAG_LEN)).tag().len(), MAX_TAG_LEN);
        for bad in [String::new(), "x".repeat(MAX_TAG_LEN + 1)] {
            let err = VersioningLayer::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
        }
        assert_eq!(layer(3), layer("3"));
    }

    #[test]
    fn headers_are_never_valid_utf8() {
        for len in 1..=MAX_TAG_LEN {
            let header = layer("é".repeat(len / 2) + &"x".repeat(len % 2)).header;
            assert!(std::str::from_utf8(&header[..2]).is_err());
        }
    }
}
