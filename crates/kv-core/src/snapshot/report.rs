//! What save, load and copy report: [`Progress`] while they run (to a callback), a
//! [`Summary`] when they end.

use std::fmt;
use std::sync::Arc;

/// How far a [`save`](super::save), [`load`](super::load) or [`copy`](super::copy) has got,
/// passed to the [`OnProgress`] callback after every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// Entries read so far (saved, or read from the file or the source store, including
    /// those then skipped as expired or existing).
    pub done: u64,
    /// The number of entries to read, when asked for with `with_total(true)` (it costs a
    /// keys-only scan of every collection first). Entries written meanwhile by others can
    /// make `done` pass it. Always `None` for [`load`](super::load).
    pub total: Option<u64>,
    /// The collection of the last entry.
    pub collection: &'a str,
}

/// A progress callback: `Fn(&Progress)`, shared (cheap to clone) and callable from any
/// thread. It is called after every entry, so it should be cheap (update a counter or a
/// progress bar, not print a line). The options' `with_progress` builders wrap a closure in
/// one; one callback can also be shared by several options.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use kv_core::snapshot::{CopyOptions, OnProgress, SaveOptions};
///
/// let done = Arc::new(AtomicU64::new(0));
/// let seen = done.clone();
/// let callback = OnProgress::new(move |p| seen.store(p.done, Ordering::Relaxed));
/// let mut save = SaveOptions::default();
/// save.progress = Some(callback.clone());
/// let mut copy = CopyOptions::default();
/// copy.progress = Some(callback);
/// ```
#[derive(Clone)]
pub struct OnProgress(Arc<dyn Fn(&Progress<'_>) + Send + Sync>);

impl OnProgress {
    /// Wraps a callback.
    pub fn new(f: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> Self {
        OnProgress(Arc::new(f))
    }

    /// Calls the callback.
    pub fn call(&self, progress: &Progress<'_>) {
        (self.0)(progress)
    }
}

impl fmt::Debug for OnProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnProgress(..)")
    }
}

/// What a [`save`](super::save), [`load`](super::load) or [`copy`](super::copy) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Entries written: to the file ([`save`](super::save)) or to the store
    /// ([`load`](super::load), [`copy`](super::copy)).
    pub entries: u64,
    /// Entries skipped because they had expired before they could be written.
    pub expired: u64,
    /// Entries skipped because their key held a live entry already
    /// ([`WriteMode::IfAbsent`](super::WriteMode::IfAbsent) only).
    pub existing: u64,
    /// Collections read: the ones selected ([`save`](super::save), [`copy`](super::copy)),
    /// or the distinct collections of the lines loaded ([`load`](super::load)).
    pub collections: u64,
}

/// Counts entries and tells the callback, if there is one.
pub(super) struct Reporter {
    callback: Option<OnProgress>,
    done: u64,
    total: Option<u64>,
}

impl Reporter {
    pub(super) fn new(callback: Option<OnProgress>, total: Option<u64>) -> Self {
        Reporter {
            callback,
            done: 0,
            total,
        }
    }

    /// One more entry of `collection` was read.
    pub(super) fn entry(&mut self, collection: &str) {
        self.done += 1;
        if let Some(callback) = &self.callback {
            callback.call(&Progress {
                done: self.done,
                total: self.total,
                collection,
            });
        }
    }

    /// Entries read so far.
    pub(super) fn done(&self) -> u64 {
        self.done
    }
}
