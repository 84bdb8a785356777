//! What a store does natively, so callers, layers and the conformance suite know what to expect.

use std::time::Duration;

/// What a store can do. A flat `Copy` struct: stores build it with struct-update syntax
/// (`Capability { ttl: true, ..Capability::default() }`), layers adjust it.
///
/// `Default` is the most conservative store: it keeps data and nothing else.
///
/// ```
/// use kv_core::Capability;
///
/// let cap = Capability { ttl: true, scan: true, ..Capability::default() };
/// assert!(cap.ttl && !cap.compare_and_swap);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Written values can be read back (false only for the null store).
    pub stores_data: bool,
    /// Puts accept a TTL and expired entries are never returned.
    pub ttl: bool,
    /// The backend deletes expired entries by itself (otherwise [`cull`] removes them).
    ///
    /// [`cull`]: crate::KvStore::cull_opts
    pub ttl_native: bool,
    /// The finest TTL step the store keeps; TTLs are rounded **up** to it.
    pub ttl_granularity: Duration,
    /// The longest TTL the store accepts, if limited.
    pub ttl_max: Option<Duration>,
    /// Batches (`get_many`, `put_many`, `delete_many`) use one native round trip or transaction.
    pub batch_native: bool,
    /// The largest batch the backend takes at once (larger batches are split by the store).
    pub batch_max: Option<usize>,
    /// Keys of a collection can be listed with [`scan`](crate::KvStore::scan_opts).
    pub scan: bool,
    /// Scans return keys in ascending byte order.
    pub scan_ordered: bool,
    /// Collections can be listed with [`collections`](crate::KvStore::collections_opts).
    pub list_collections: bool,
    /// One collection can be emptied with [`clear`](crate::KvStore::clear_opts).
    pub clear: bool,
    /// Everything the store owns can be removed with [`destroy`](crate::KvStore::destroy_opts).
    pub destroy: bool,
    /// Puts support [`PutMode::IfAbsent`](crate::PutMode::IfAbsent), atomically.
    pub if_absent: bool,
    /// Puts support [`PutMode::IfVersion`](crate::PutMode::IfVersion) and reads return versions.
    pub compare_and_swap: bool,
    /// Reads return `created_at`.
    pub created_at: bool,
    /// A put that returned `Ok` survives a crash of the process (and, where the backend
    /// promises it, of the machine).
    pub durable: bool,
    /// Several processes can use the same data at once.
    pub shared: bool,
    /// The store rejects every write with [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly).
    pub read_only: bool,
    /// The store may evict live entries to respect a size bound (a cache).
    pub evicts: bool,
    /// The longest key accepted, in UTF-8 bytes (longer keys → `InvalidKey`).
    pub max_key_len: Option<usize>,
    /// The longest collection name accepted, in UTF-8 bytes.
    pub max_collection_len: Option<usize>,
    /// The largest value accepted, in bytes (larger → `ValueTooLarge`).
    pub max_value_len: Option<usize>,
}

impl Default for Capability {
    fn default() -> Self {
        Capability {
            stores_data: true,
            ttl: false,
            ttl_native: false,
            ttl_granularity: Duration::from_micros(1),
            ttl_max: None,
            batch_native: false,
            batch_max: None,
            scan: false,
            scan_ordered: false,
            list_collections: false,
            clear: false,
            destroy: false,
            if_absent: false,
            compare_and_swap: false,
            created_at: false,
            durable: false,
            shared: false,
            read_only: false,
            evicts: false,
            max_key_len: None,
            max_collection_len: None,
            max_value_len: None,
        }
    }
}

impl Capability {
    /// Every capability as `(name, value)` text pairs, for `kv info` and logs.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        fn opt<T: std::fmt::Debug>(o: Option<T>) -> String {
            o.map_or_else(|| "unlimited".to_owned(), |v| format!("{v:?}"))
        }
        vec![
            ("stores_data", self.stores_data.to_string()),
            ("ttl", self.ttl.to_string()),
            ("ttl_native", self.ttl_native.to_string()),
            ("ttl_granularity", format!("{:?}", self.ttl_granularity)),
            ("ttl_max", opt(self.ttl_max)),
            ("batch_native", self.batch_native.to_string()),
            ("batch_max", opt(self.batch_max)),
            ("scan", self.scan.to_string()),
            ("scan_ordered", self.scan_ordered.to_string()),
            ("list_collections", self.list_collections.to_string()),
            ("clear", self.clear.to_string()),
            ("destroy", self.destroy.to_string()),
            ("if_absent", self.if_absent.to_string()),
            ("compare_and_swap", self.compare_and_swap.to_string()),
            ("created_at", self.created_at.to_string()),
            ("durable", self.durable.to_string()),
            ("shared", self.shared.to_string()),
            ("read_only", self.read_only.to_string()),
            ("evicts", self.evicts.to_string()),
            ("max_key_len", opt(self.max_key_len)),
            ("max_collection_len", opt(self.max_collection_len)),
            ("max_value_len", opt(self.max_value_len)),
        ]
    }
}
