//! Loading: snapshot lines read one by one and written to a store in batches.
//!
//! [`Loader`] does the work line by line and leaves reading to its caller, so any source
//! works, blocking or async (kv-core depends on no async runtime, and there is no async
//! read trait that every runtime shares); [`load`] and [`load_from_path`] drive it from a
//! blocking reader.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::batch::BatchWriter;
use super::report::Reporter;
use super::{LoadOptions, MalformedLine, Summary, io_error, line};
use crate::{KvStore, Result};

/// Loads snapshot lines from a blocking reader (a file, a byte slice, locked stdin) into
/// `store`, in batches (see [`LoadOptions`] for what happens to expiry times and existing
/// entries). Blank lines are skipped, unknown fields ignored.
///
/// For an async source (a Tokio file or socket), feed its lines to a [`Loader`] instead:
/// a blocking read would hold up the async runtime's thread.
///
/// # Errors
///
/// On a malformed line: an [`ErrorKind::Serialization`](crate::ErrorKind::Serialization)
/// error whose source is a [`MalformedLine`] (its number and what is wrong), after the
/// entries before it are written. The store's error if a write fails; an
/// [`ErrorKind::Backend`](crate::ErrorKind::Backend) error with the [`std::io::Error`] as
/// its source if reading fails.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// use kv_core::KvStoreExt;
/// use kv_core::snapshot::{self, LoadOptions};
///
/// let file = concat!(
///     r#"{"collection":"users","key":"alice","value":{"age":30},"expires_at":null}"#, "\n",
///     r#"{"collection":"users","key":"old","value":1,"expires_at":"2001-01-01T00:00:00Z"}"#, "\n",
/// );
/// let store = kv_store_memory::MemoryStore::new();
/// let summary = snapshot::load(&store, file.as_bytes(), &LoadOptions::default()).await?;
/// assert_eq!((summary.entries, summary.expired), (1, 1));
/// assert_eq!(store.get_bytes("users", "alice").await?.unwrap(), &b"{\"age\":30}"[..]);
/// # Ok(()) }
/// ```
pub async fn load<S: KvStore, R: BufRead>(
    store: &S,
    reader: R,
    opts: &LoadOptions,
) -> Result<Summary> {
    read_snapshot(store, reader, opts, "the snapshot").await
}

/// Loads a snapshot file (see [`load`]); the file is read with blocking calls.
///
/// # Errors
///
/// As [`load`]; the messages name `path`.
///
/// # Example
///
/// See [`save_to_path`](super::save_to_path).
pub async fn load_from_path<S: KvStore>(
    store: &S,
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<Summary> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| io_error(format!("cannot open {source}"), e))?;
    read_snapshot(
        store,
        BufReader::with_capacity(256 * 1024, file),
        opts,
        &source,
    )
    .await
}

/// [`load`], with `source` naming what `reader` is in error messages.
async fn read_snapshot<S: KvStore, R: BufRead>(
    store: &S,
    mut reader: R,
    opts: &LoadOptions,
    source: &str,
) -> Result<Summary> {
    let mut loader = Loader::new(store, opts);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(format!("cannot read {source}"), e))?;
        if n == 0 {
            return loader.finish().await;
        }
        if let Err(e) = loader.push_line(&buf).await {
            if MalformedLine::of(&e).is_some() {
                // What came before the bad line is written, as it would be one line at a time.
                loader.finish().await?;
            }
            return Err(e);
        }
    }
}

/// Loads snapshot lines pushed one at a time: the engine of [`load`], for sources that
/// [`load`] cannot read (async readers, lines that arrive in messages). Call
/// [`Loader::finish`] at the end: entries are buffered for batches, and dropping the loader
/// loses what is still buffered.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// use kv_core::snapshot::{LoadOptions, Loader, MalformedLine};
///
/// let store = kv_store_memory::MemoryStore::new();
/// let mut loader = Loader::new(&store, &LoadOptions::default());
/// // With Tokio: while let Some(line) = lines.next_line().await? { ... }
/// for line in ["{\"collection\":\"c\",\"key\":\"k\",\"value\":1}", "", "not json"] {
///     if let Err(e) = loader.push_line(line.as_bytes()).await {
///         assert_eq!(MalformedLine::of(&e).unwrap().line(), 3);
///         break;
///     }
/// }
/// let summary = loader.finish().await?;
/// assert_eq!(summary.entries, 1);
/// # Ok(()) }
/// ```
pub struct Loader<'s, S: KvStore> {
    store: &'s S,
    writer: BatchWriter<'s, S>,
    /// The selected collections (resolved), or `None` for all.
    only: Option<HashSet<String>>,
    report: Reporter,
    line: u64,
    /// The collections of the lines loaded, for [`Summary::collections`].
    collections: HashSet<String>,
}

impl<'s, S: KvStore> Loader<'s, S> {
    /// A loader into `store`.
    pub fn new(store: &'s S, opts: &LoadOptions) -> Self {
        let only = opts.collections.as_ref().map(|names| {
            names
                .iter()
                .map(|n| store.info().resolve(n).to_owned())
                .collect()
        });
        Loader {
            store,
            writer: BatchWriter::new(store, opts.batch_size, opts.expiry, opts.mode),
            only,
            report: Reporter::new(opts.progress.clone(), None),
            line: 0,
            collections: HashSet::new(),
        }
    }

    /// Takes the next line (with or without its line break): a blank line is skipped, a
    /// line of an unselected collection is skipped, an entry is buffered and written when a
    /// batch is full.
    ///
    /// # Errors
    ///
    /// A [`MalformedLine`] error (see [`load`]), after which the loader still holds the
    /// entries before it ([`Loader::finish`] writes them) and takes further lines; or the
    /// store's error if a batch could not be written.
    pub async fn push_line(&mut self, line: &[u8]) -> Result<()> {
        self.line += 1;
        let record = match line::parse(line) {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(()),
            Err(reason) => return Err(MalformedLine::error(self.line, reason)),
        };
        let collection = self.store.info().resolve(&record.collection).to_owned();
        if self
            .only
            .as_ref()
            .is_some_and(|only| !only.contains(&collection))
        {
            return Ok(());
        }
        if !self.collections.contains(&collection) {
            self.collections.insert(collection.clone());
        }
        self.report.entry(&collection);
        self.writer
            .push(collection, record.key, record.value, record.expires_at)
            .await
    }

    /// Lines taken so far (blank and skipped ones included): the number of the last line.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Writes what is still buffered and says what was loaded.
    ///
    /// # Errors
    ///
    /// The store's error if a batch could not be written.
    pub async fn finish(mut self) -> Result<Summary> {
        let written = self.writer.finish().await?;
        Ok(written.summary(self.collections.len() as u64))
    }
}

impl<S: KvStore> fmt::Debug for Loader<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("store", &self.store.info().kind)
            .field("lines", &self.line)
            .field("entries", &self.report.done())
            .finish_non_exhaustive()
    }
}
