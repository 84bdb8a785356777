//! The error of a line that is not a snapshot record.

use std::fmt;

use crate::{Error, ErrorKind};

/// Which line of a snapshot is malformed, and why. It is the
/// [`source`](std::error::Error::source) of the [`ErrorKind::Serialization`] error that
/// [`load`](super::load) and [`Loader::push_line`](super::Loader::push_line) return; find
/// it with [`MalformedLine::of`]. It never holds the line's text: lines hold values, which
/// may be secrets.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use kv_core::snapshot::{self, LoadOptions, MalformedLine};
///
/// let store = kv_store_memory::MemoryStore::new();
/// let file = b"{\"collection\":\"c\",\"key\":\"a\",\"value\":1}\n{\"collection\":\"c\"}\n";
/// let err = snapshot::load(&store, &file[..], &LoadOptions::default()).await.unwrap_err();
/// let bad = MalformedLine::of(&err).unwrap();
/// assert_eq!(bad.line(), 2);
/// assert_eq!(bad.reason(), "has no key");
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedLine {
    line: u64,
    reason: String,
}

impl MalformedLine {
    /// The malformed line's number, counting from 1 (blank lines count).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The malformed line behind an error, if that is what the error is about.
    pub fn of(err: &Error) -> Option<&MalformedLine> {
        std::error::Error::source(err)?.downcast_ref()
    }

    /// The error for line `line`.
    pub(super) fn error(line: u64, reason: String) -> Error {
        Error::new(ErrorKind::Serialization, "malformed snapshot")
            .with_source(MalformedLine { line, reason })
    }
}

impl fmt::Display for MalformedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for MalformedLine {}
