//! Options of each operation. Every operation takes one options struct so it can grow
//! without breaking callers or stores; build them with `Default` and the `with_*` methods.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::search::Filter;

use crate::{Entry, Version};

/// Options of [`KvStore::get_opts`](crate::KvStore::get_opts),
/// [`KvStore::get_many_opts`](crate::KvStore::get_many_opts) and
/// [`KvStore::ttl_opts`](crate::KvStore::ttl_opts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetOptions {}

/// How a put treats an existing entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutMode {
    /// Insert or replace (the default).
    #[default]
    Upsert,
    /// Only insert; fail with [`ErrorKind::ConditionFailed`](crate::ErrorKind::ConditionFailed)
    /// if a live (unexpired) entry exists.
    IfAbsent,
    /// Only replace the entry whose current version is this one (compare-and-swap); fail with
    /// [`ErrorKind::ConditionFailed`](crate::ErrorKind::ConditionFailed) if the entry is missing,
    /// expired or was written since.
    IfVersion(Version),
}

/// Options of [`KvStore::put_opts`](crate::KvStore::put_opts).
///
/// ```
/// use std::time::Duration;
/// use kv_core::{PutMode, PutOptions};
///
/// let opts = PutOptions::default()
///     .with_ttl(Duration::from_secs(60))
///     .with_mode(PutMode::IfAbsent);
/// assert_eq!(opts.ttl, Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// Time to live; `None` = never expires. Zero is rejected with
    /// [`ErrorKind::InvalidTtl`](crate::ErrorKind::InvalidTtl). A put always replaces the
    /// previous expiry (a put without TTL makes the entry permanent).
    pub ttl: Option<Duration>,
    /// Insert/replace behaviour.
    pub mode: PutMode,
}

impl PutOptions {
    /// Sets the time to live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets an optional time to live.
    pub fn with_ttl_opt(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: PutMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Options of [`KvStore::put_many_opts`](crate::KvStore::put_many_opts). A batch is always an
/// upsert, with one TTL for every entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutManyOptions {
    /// Time to live of every entry of the batch; `None` = never expires.
    pub ttl: Option<Duration>,
}

impl PutManyOptions {
    /// Sets the time to live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets an optional time to live.
    pub fn with_ttl_opt(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }
}

/// Options of [`KvStore::delete_opts`](crate::KvStore::delete_opts) and
/// [`KvStore::delete_many_opts`](crate::KvStore::delete_many_opts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteOptions {}

/// A position in a scan, to resume it later (even from another process).
///
/// It is opaque: only pass back what a [`ScanPage`] returned, for the same store, collection
/// and prefix. Its text form (`Display`/[`Cursor::new`]) is stable for a given store.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor from its text form.
    pub fn new(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({:?})", self.0)
    }
}

/// The default number of items per scan page.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// Options of [`KvStore::scan_opts`](crate::KvStore::scan_opts).
///
/// ```
/// use kv_core::ScanOptions;
///
/// let opts = ScanOptions::default().with_prefix("user:").with_page_size(50).keys_only();
/// assert_eq!(opts.prefix, "user:");
/// assert!(opts.keys_only);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Only keys starting with this prefix (plain text, no pattern syntax).
    pub prefix: String,
    /// Resume after this position; `None` starts at the beginning.
    pub cursor: Option<Cursor>,
    /// At most this many items per page (at least 1; a store may return fewer and still have
    /// more — only a `None` cursor ends a scan).
    pub page_size: usize,
    /// Return keys only ([`ScanItem::entry`] is `None`), which is cheaper on most stores.
    pub keys_only: bool,
    /// A search hint: a store that can evaluate (part of) this filter natively may leave out
    /// items that do not match; it must never leave out one that does. Stores that cannot
    /// filter ignore it, so callers check every item again with
    /// [`Filter::matches_item`](crate::search::Filter::matches_item), as
    /// [`KvStoreExt::search`](crate::KvStoreExt::search) does. A layer that changes keys or
    /// values must remove (the affected part of) the filter before passing the options on.
    pub filter: Option<Arc<Filter>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            prefix: String::new(),
            cursor: None,
            page_size: DEFAULT_PAGE_SIZE,
            keys_only: false,
            filter: None,
        }
    }
}

impl ScanOptions {
    /// Sets the key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the cursor to resume from.
    pub fn with_cursor(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Sets the page size (values below 1 are treated as 1).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Asks for keys only.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// Attaches a search filter as a pushdown hint (see [`ScanOptions::filter`]).
    pub fn with_filter(mut self, filter: impl Into<Arc<Filter>>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// The filter, if any, that a store may evaluate natively.
    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_deref()
    }

    /// Drops the filter: what a layer that changes stored values passes on (the store below
    /// would evaluate conditions on bytes the caller never wrote).
    pub fn without_filter(mut self) -> Self {
        self.filter = None;
        self
    }

    /// Drops the filter's key pattern, keeping its conditions on values: what a layer that
    /// renames keys passes on.
    pub fn without_key_filter(mut self) -> Self {
        if let Some(f) = &self.filter {
            if f.key().is_some() {
                self.filter = (!f.conditions().is_empty()).then(|| Arc::new(f.without_key()));
            }
        }
        self
    }
}

/// One item of a scan page.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanItem {
    /// The key.
    pub key: String,
    /// The entry, unless the scan was keys-only.
    pub entry: Option<Entry>,
}

impl ScanItem {
    /// A new item.
    pub fn new(key: String, entry: Option<Entry>) -> Self {
        ScanItem { key, entry }
    }
}

/// One page of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanPage {
    /// The items of this page (in key order if the store's scans are ordered).
    pub items: Vec<ScanItem>,
    /// Where to resume; `None` when the scan is complete.
    pub cursor: Option<Cursor>,
}

impl ScanPage {
    /// A new page.
    pub fn new(items: Vec<ScanItem>, cursor: Option<Cursor>) -> Self {
        ScanPage { items, cursor }
    }
}

/// Options of [`KvStore::collections_opts`](crate::KvStore::collections_opts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionsOptions {}

/// Options of [`KvStore::clear_opts`](crate::KvStore::clear_opts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClearOptions {}

/// Options of [`KvStore::destroy_opts`](crate::KvStore::destroy_opts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestroyOptions {}

/// Options of [`KvStore::cull_opts`](crate::KvStore::cull_opts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CullOptions {}
