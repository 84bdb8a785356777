//! Snapshots: [`save`] a store (or some of its collections) to a file, [`load`] it back into
//! any store, or [`copy`] from one store to another — for backups, migrations between
//! backends, fixtures and seeding, on every store through the one [`KvStore`] API.
//!
//! [`save`] streams paged scans to a writer, [`load`] and [`copy`] write in `put_many`
//! batches (grouped by collection and expiry), so no collection is ever held in memory.
//! Entries keep their remaining lifetime, expired ones are skipped and counted, and existing
//! entries can be kept ([`WriteMode::IfAbsent`]). A callback can follow the [`Progress`];
//! every operation ends with a [`Summary`]. `kv export`, `kv import` and `kv copy` are
//! these functions behind a command line.
//!
//! # Format
//!
//! JSON Lines: one object per entry, in this field order:
//!
//! ```text
//! {"collection":"users","key":"alice","value":{"age":30},"expires_at":null}
//! {"collection":"blobs","key":"logo","value_base64":"iVBORw0KGgo=","expires_at":"2026-11-22T02:56:14.569741Z"}
//! ```
//!
//! `value` is the stored JSON text, minified but otherwise byte for byte what was stored (so
//! big integers survive); values that are not UTF-8 JSON are written as `value_base64`
//! (standard base64), so a snapshot is lossless for every store and codec. `expires_at` is
//! RFC 3339 UTC with microseconds, or `null` for entries that never expire. Collections are
//! written in name order (or the order asked for), each by its real name (the default
//! collection as `default_collection`, not `""`). Readers skip blank lines and ignore
//! unknown fields, so later versions may add some (such as `created_at`).
//!
//! # I/O
//!
//! [`save`] and [`load`] take a blocking [`std::io::Write`] / [`std::io::BufRead`]: kv-core
//! depends on no async runtime, and files, byte buffers and stdin all have these. The
//! store I/O in between is async. For an async source, push its lines to a [`Loader`];
//! [`save_to_path`] replaces its file atomically.
//!
//! # Errors
//!
//! A malformed line is reported by number ([`MalformedLine`]), with what is wrong with it
//! but never its text; no error carries a value.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kv_core::Result<()> {
//! use std::time::Duration;
//! use kv_core::KvStoreExt;
//! use kv_core::snapshot::{self, LoadOptions, SaveOptions};
//!
//! let store = kv_store_memory::MemoryStore::new();
//! store.put("users", "alice", &serde_json::json!({"age": 30})).await?;
//! store.put_with_ttl("sessions", "s1", &"token", Duration::from_secs(3600)).await?;
//!
//! // Only the users, to any `std::io::Write`.
//! let mut file = Vec::new();
//! let opts = SaveOptions::default().with_collection("users");
//! snapshot::save(&store, &mut file, &opts).await?;
//! assert_eq!(
//!     file,
//!     b"{\"collection\":\"users\",\"key\":\"alice\",\"value\":{\"age\":30},\"expires_at\":null}\n"
//! );
//!
//! let restored = kv_store_memory::MemoryStore::new();
//! let summary = snapshot::load(&restored, &file[..], &LoadOptions::default()).await?;
//! assert_eq!(summary.entries, 1);
//! assert_eq!(restored.get::<serde_json::Value>("users", "alice").await?.unwrap()["age"], 30);
//! # Ok(()) }
//! ```

mod atomic_file;
mod base64;
mod batch;
mod copy;
mod json_text;
mod line;
mod load;
mod malformed;
mod options;
mod report;
mod save;
mod source;

pub use copy::copy;
pub use load::{Loader, load, load_from_path};
pub use malformed::MalformedLine;
pub use options::{CopyOptions, DEFAULT_BATCH_SIZE, Expiry, LoadOptions, SaveOptions, WriteMode};
pub use report::{OnProgress, Progress, Summary};
pub use save::{save, save_to_path};

#[cfg(doc)]
use crate::KvStore;

/// Appends the snapshot line of one entry (with its `\n`) to `out` — the exact line
/// [`save`] writes, so a program can print selected entries (search results, say) in a form
/// [`load`] and `kv import` read back.
///
/// ```
/// let entry = kv_core::Entry::new(kv_core::Bytes::from_static(br#"{"age": 30}"#));
/// let mut out = Vec::new();
/// kv_core::snapshot::write_record(&mut out, "users", "alice", &entry);
/// assert_eq!(out, b"{\"collection\":\"users\",\"key\":\"alice\",\"value\":{\"age\":30},\"expires_at\":null}\n");
/// ```
pub fn write_record(out: &mut Vec<u8>, collection: &str, key: &str, entry: &crate::Entry) {
    line::write(out, collection, key, &entry.value, entry.expires_at);
}

/// An I/O error on the snapshot's file or stream: `what` says what failed and on which path
/// (paths are not secrets); the [`std::io::Error`] is the source, so a caller can tell a
/// closed pipe from a full disk.
fn io_error(what: String, e: std::io::Error) -> crate::Error {
    crate::Error::new(crate::ErrorKind::Backend, what).with_source(e)
}
