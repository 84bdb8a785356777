//! The options of [`save`](super::save), [`load`](super::load) and [`copy`](super::copy).
//!
//! The three share their collection selection, batch size and progress callback; load and
//! copy also say what happens to expiry times and to keys that exist already. The shared
//! builder methods are written once, by the macros below.

use super::report::{OnProgress, Progress};

/// Entries per `put_many` call and per scan page, unless set otherwise: big enough that a
/// round trip carries plenty, small enough for every store's batch limit.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// What [`load`](super::load) and [`copy`](super::copy) do with the expiry time of an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expiry {
    /// Each entry keeps the lifetime it has left (computed when it is written, so time spent
    /// reading never lengthens it); entries already expired are skipped and counted in
    /// [`Summary::expired`](super::Summary::expired).
    #[default]
    Keep,
    /// Entries are written without a lifetime: they never expire. Entries already expired
    /// are still skipped and counted.
    Persist,
    /// Every entry is written without a lifetime, including those already expired (which
    /// come back to life).
    PersistAll,
}

/// Whether [`load`](super::load) and [`copy`](super::copy) replace entries that exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteMode {
    /// Replace what is there (the default). Entries are written in batches with `put_many`;
    /// of two lines with the same key, the last one wins.
    #[default]
    Overwrite,
    /// Keep a live entry that is there and count the skipped one in
    /// [`Summary::existing`](super::Summary::existing). Each entry is then one atomic
    /// put-if-absent (one round trip per entry: no store has a batched form), so the first
    /// of two lines with the same key wins. Stores without put-if-absent fail with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    IfAbsent,
}

/// Options of [`save`](super::save) and [`save_to_path`](super::save_to_path).
///
/// ```
/// use kv_core::snapshot::SaveOptions;
///
/// let opts = SaveOptions::default()
///     .with_collections(["users", "sessions"])
///     .with_batch_size(1000)
///     .with_total(true)
///     .with_progress(|p| eprintln!("{}/{:?}", p.done, p.total));
/// assert_eq!(opts.collections.as_deref(), Some(&["users".to_owned(), "sessions".to_owned()][..]));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SaveOptions {
    /// The collections to save, in this order; `None` (the default) = every collection, in
    /// name order. An empty name means the store's default collection.
    pub collections: Option<Vec<String>>,
    /// Entries per scan page (at least 1; default [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Called after every entry.
    pub progress: Option<OnProgress>,
    /// Count the entries first, for [`Progress::total`] (a keys-only scan of every
    /// collection). Off by default.
    pub total: bool,
}

/// Options of [`load`](super::load), [`load_from_path`](super::load_from_path) and
/// [`Loader`](super::Loader).
///
/// ```
/// use kv_core::snapshot::{Expiry, LoadOptions, WriteMode};
///
/// let opts = LoadOptions::default()
///     .with_collection("users")
///     .with_expiry(Expiry::Persist)
///     .with_mode(WriteMode::IfAbsent);
/// assert_eq!(opts.mode, WriteMode::IfAbsent);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Load only the lines of these collections; `None` (the default) = every line. An
    /// empty name means the store's default collection.
    pub collections: Option<Vec<String>>,
    /// Entries per `put_many` call (at least 1; default [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Called after every entry line.
    pub progress: Option<OnProgress>,
    /// What happens to expiry times (default: kept).
    pub expiry: Expiry,
    /// Whether existing entries are replaced (default: yes).
    pub mode: WriteMode,
}

/// Options of [`copy`](super::copy).
///
/// ```
/// use kv_core::snapshot::{CopyOptions, WriteMode};
///
/// let opts = CopyOptions::default().with_total(true).with_mode(WriteMode::IfAbsent);
/// assert!(opts.total);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CopyOptions {
    /// The collections to copy, in this order; `None` (the default) = every collection of
    /// the source, in name order. An empty name means the source's default collection.
    pub collections: Option<Vec<String>>,
    /// Entries per scan page and per `put_many` call (at least 1; default
    /// [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Called after every entry.
    pub progress: Option<OnProgress>,
    /// Count the source's entries first, for [`Progress::total`] (a keys-only scan of every
    /// collection). Off by default.
    pub total: bool,
    /// What happens to expiry times (default: kept).
    pub expiry: Expiry,
    /// Whether existing entries are replaced (default: yes).
    pub mode: WriteMode,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            collections: None,
            batch_size: DEFAULT_BATCH_SIZE,
            progress: None,
            total: false,
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            collections: None,
            batch_size: DEFAULT_BATCH_SIZE,
            progress: None,
            expiry: Expiry::default(),
            mode: WriteMode::default(),
        }
    }
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            collections: None,
            batch_size: DEFAULT_BATCH_SIZE,
            progress: None,
            total: false,
            expiry: Expiry::default(),
            mode: WriteMode::default(),
        }
    }
}

/// The builders every options struct has.
macro_rules! selection_builders {
    ($options:ident) => {
        impl $options {
            /// Only these collections (an empty name is the default collection).
            pub fn with_collections<I, S>(mut self, names: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                self.collections = Some(names.into_iter().map(Into::into).collect());
                self
            }

            /// Only this collection (an empty name is the default collection).
            pub fn with_collection(self, name: impl Into<String>) -> Self {
                self.with_collections([name])
            }

            /// Sets the batch size; 0 counts as 1.
            pub fn with_batch_size(mut self, batch_size: usize) -> Self {
                self.batch_size = batch_size.max(1);
                self
            }

            /// Sets the progress callback, called after every entry.
            pub fn with_progress(
                mut self,
                callback: impl Fn(&Progress<'_>) + Send + Sync + 'static,
            ) -> Self {
                self.progress = Some(OnProgress::new(callback));
                self
            }
        }
    };
}

/// The builder of the options that read a store (save and copy).
macro_rules! total_builder {
    ($options:ident) => {
        impl $options {
            /// Count the entries first, so that [`Progress::total`] is known.
            pub fn with_total(mut self, total: bool) -> Self {
                self.total = total;
                self
            }
        }
    };
}

/// The builders of the options that write a store (load and copy).
macro_rules! write_builders {
    ($options:ident) => {
        impl $options {
            /// Sets what happens to expiry times.
            pub fn with_expiry(mut self, expiry: Expiry) -> Self {
                self.expiry = expiry;
                self
            }

            /// Sets whether existing entries are replaced.
            pub fn with_mode(mut self, mode: WriteMode) -> Self {
                self.mode = mode;
                self
            }
        }
    };
}

selection_builders!(SaveOptions);
selection_builders!(LoadOptions);
selection_builders!(CopyOptions);
total_builder!(SaveOptions);
total_builder!(CopyOptions);
write_builders!(LoadOptions);
write_builders!(CopyOptions);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_builders() {
        let opts = LoadOptions::default();
        assert_eq!(opts.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(
            (opts.expiry, opts.mode),
            (Expiry::Keep, WriteMode::Overwrite)
        );
        assert!(opts.collections.is_none() && opts.progress.is_none());

        let opts = CopyOptions::default()
            .with_collection("")
            .with_batch_size(0)
            .with_progress(|_| {});
        assert_eq!(opts.collections, Some(vec![String::new()]));
        assert_eq!(opts.batch_size, 1);
        assert_eq!(format!("{:?}", opts.progress), "Some(OnProgress(..))");
    }
}
