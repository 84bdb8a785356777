//! What a case needs, and the reason it is skipped when the store cannot provide it.

use kv_core::Capability;

/// A requirement of a case on the store under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Need {
    /// Written values can be read back.
    Data,
    /// TTL support.
    Ttl,
    /// Scans.
    Scan,
    /// Scans in key order.
    ScanOrdered,
    /// Listing collections.
    ListCollections,
    /// Clearing one collection.
    Clear,
    /// Destroying the store's data.
    Destroy,
    /// Atomic put-if-absent.
    IfAbsent,
    /// Compare-and-swap.
    CompareAndSwap,
    /// `created_at` on reads.
    CreatedAt,
    /// The store never evicts live entries (no size bound).
    NoEviction,
    /// The store evicts entries beyond a bound (a cache).
    Eviction,
    /// The case never writes, so it also runs on read-only stores. Every other case is
    /// skipped on a store whose capability says `read_only`.
    ReadOnlySafe,
    /// The store is read-only (cases about refusing writes).
    ReadOnly,
    /// The store declares a value size limit small enough to test (at most
    /// [`TESTABLE_VALUE_LIMIT`] bytes).
    ValueLimit,
    /// The harness can write corrupt bytes under a key.
    CorruptHook,
    /// The harness can close and reopen the same data, and the store is durable.
    Reopen,
}

impl Need {
    /// Why a store lacking this need skips the case, or `None` if it has it.
    pub(crate) fn unmet(self, cap: &Capability, hooks: Hooks) -> Option<&'static str> {
        let (ok, why) = match self {
            Need::Data => (cap.stores_data, "store keeps no data"),
            Need::Ttl => (cap.ttl, "store has no TTL support"),
            Need::Scan => (cap.scan, "store cannot list keys"),
            Need::ScanOrdered => (
                cap.scan && cap.scan_ordered,
                "store's scans are not ordered",
            ),
            Need::ListCollections => (cap.list_collections, "store cannot list collections"),
            Need::Clear => (cap.clear, "store cannot clear a collection"),
            Need::Destroy => (cap.destroy, "store cannot destroy its data"),
            Need::IfAbsent => (cap.if_absent, "store has no atomic put-if-absent"),
            Need::CompareAndSwap => (cap.compare_and_swap, "store has no compare-and-swap"),
            Need::CreatedAt => (cap.created_at, "store does not keep created_at"),
            Need::NoEviction => (!cap.evicts, "store evicts entries (bounded cache)"),
            Need::Eviction => (cap.evicts, "store is not bounded (never evicts)"),
            Need::ReadOnlySafe => (true, ""),
            Need::ReadOnly => (cap.read_only, "store is writable"),
            Need::ValueLimit => (
                cap.max_value_len.is_some_and(|m| m <= TESTABLE_VALUE_LIMIT),
                "store declares no value size limit, or one above 64 MiB (too large to test)",
            ),
            Need::CorruptHook => (
                hooks.corrupt,
                "harness has no hook to corrupt stored bytes (e.g. values live as Rust objects)",
            ),
            Need::Reopen => (
                hooks.reopen && cap.durable,
                "store is not durable or harness cannot reopen it",
            ),
        };
        (!ok).then_some(why)
    }
}

/// The largest `max_value_len` the suite tests by writing a value one byte over it.
pub const TESTABLE_VALUE_LIMIT: usize = 64 * 1024 * 1024;

/// Which optional harness hooks exist.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hooks {
    pub corrupt: bool,
    pub reopen: bool,
}
