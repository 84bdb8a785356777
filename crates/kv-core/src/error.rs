//! One error type for every store and layer.
//!
//! A miss is never an error (`Ok(None)`); an [`Error`] always means the operation could not do
//! what was asked. Every error has a [`ErrorKind`], says whether retrying may help
//! ([`Error::is_temporary`]) and carries the context it happened in: store, operation,
//! collection and key. Values and secrets are never part of an error.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

/// The result type of every kv operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form a program can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key or collection name is not accepted by this store (too long, reserved, ...).
    InvalidKey,
    /// The time-to-live is zero, negative, or beyond what the store can express.
    InvalidTtl,
    /// An argument or option is invalid (e.g. a malformed cursor).
    InvalidArgument,
    /// The store configuration or URL is invalid.
    Config,
    /// The value is larger than the store accepts.
    ValueTooLarge,
    /// A value could not be encoded or decoded by the codec or format in use.
    Serialization,
    /// Bytes read from the backend are not in the expected format.
    Corrupt,
    /// A conditional write failed: the key exists (if-absent) or its version changed (if-version).
    ConditionFailed,
    /// The store cannot do this operation or option.
    Unsupported,
    /// The backend is unreachable, locked or overloaded.
    Unavailable,
    /// The operation did not finish in time.
    Timeout,
    /// The store (or a layer) is read-only.
    ReadOnly,
    /// The store was closed.
    Closed,
    /// The entry does not exist. Only APIs that require an entry return it (such as
    /// [`Collection::require`](crate::Collection::require)); plain reads return `Ok(None)`.
    NotFound,
    /// Any other error reported by the backend.
    Backend,
}

impl ErrorKind {
    /// A short lowercase name, stable across versions (used in logs and the CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid key",
            ErrorKind::InvalidTtl => "invalid ttl",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::ValueTooLarge => "value too large",
            ErrorKind::Serialization => "serialization error",
            ErrorKind::Corrupt => "corrupt data",
            ErrorKind::ConditionFailed => "condition failed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::Closed => "closed",
            ErrorKind::NotFound => "not found",
            ErrorKind::Backend => "backend error",
        }
    }

    /// Whether errors of this kind are temporary unless said otherwise.
    fn default_temporary(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation an error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening or configuring a store.
    Open,
    /// [`KvStore::get_opts`](crate::KvStore::get_opts).
    Get,
    /// [`KvStore::get_many_opts`](crate::KvStore::get_many_opts).
    GetMany,
    /// [`KvStore::put_opts`](crate::KvStore::put_opts).
    Put,
    /// [`KvStore::put_many_opts`](crate::KvStore::put_many_opts).
    PutMany,
    /// [`KvStore::delete_opts`](crate::KvStore::delete_opts).
    Delete,
    /// [`KvStore::delete_many_opts`](crate::KvStore::delete_many_opts).
    DeleteMany,
    /// [`KvStore::ttl_opts`](crate::KvStore::ttl_opts).
    Ttl,
    /// [`KvStore::scan_opts`](crate::KvStore::scan_opts).
    Scan,
    /// [`KvStore::collections_opts`](crate::KvStore::collections_opts).
    Collections,
    /// [`KvStore::clear_opts`](crate::KvStore::clear_opts).
    Clear,
    /// [`KvStore::destroy_opts`](crate::KvStore::destroy_opts).
    Destroy,
    /// [`KvStore::cull_opts`](crate::KvStore::cull_opts).
    Cull,
    /// [`KvStore::close`](crate::KvStore::close).
    Close,
}

impl Operation {
    /// The operation's name as used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Open => "open",
            Operation::Get => "get",
            Operation::GetMany => "get_many",
            Operation::Put => "put",
            Operation::PutMany => "put_many",
            Operation::Delete => "delete",
            Operation::DeleteMany => "delete_many",
            Operation::Ttl => "ttl",
            Operation::Scan => "scan",
            Operation::Collections => "collections",
            Operation::Clear => "clear",
            Operation::Destroy => "destroy",
            Operation::Cull => "cull",
            Operation::Close => "close",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every kv operation.
///
/// ```
/// use kv_core::{Error, ErrorKind, Operation};
///
/// let err = Error::new(ErrorKind::InvalidTtl, "ttl must be greater than zero")
///     .with_store("memory")
///     .with_operation(Operation::Put)
///     .with_collection("users")
///     .with_key("alice");
/// assert_eq!(err.kind(), ErrorKind::InvalidTtl);
/// assert!(!err.is_temporary());
/// assert_eq!(
///     err.to_string(),
///     "invalid ttl: ttl must be greater than zero (store: memory, op: put, collection: \"users\", key: \"alice\")"
/// );
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    temporary: bool,
    message: Cow<'static, str>,
    store: Option<Cow<'static, str>>,
    operation: Option<Operation>,
    collection: Option<String>,
    key: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// Keys and collection names are shown in errors, but a 10 000-character key would drown the
/// message, so they are cut (on a char boundary) after this many bytes.
const MAX_NAME_IN_MESSAGE: usize = 80;

impl Error {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error(Box::new(Inner {
            kind,
            temporary: kind.default_temporary(),
            message: message.into(),
            store: None,
            operation: None,
            collection: None,
            key: None,
            source: None,
        }))
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message without context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// True if retrying the same operation later may succeed (a lost connection, a timeout).
    pub fn is_temporary(&self) -> bool {
        self.0.temporary
    }

    /// The store kind the error happened in (`"memory"`, `"redis"`, ...), if known.
    pub fn store(&self) -> Option<&str> {
        self.0.store.as_deref()
    }

    /// The operation the error happened in, if known.
    pub fn operation(&self) -> Option<Operation> {
        self.0.operation
    }

    /// The collection the error happened in, if known.
    pub fn collection(&self) -> Option<&str> {
        self.0.collection.as_deref()
    }

    /// The key the error happened at, if known.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// Marks the error as temporary (`true`) or permanent (`false`).
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.0.temporary = temporary;
        self
    }

    /// Sets the store kind, unless one is set already (the innermost store wins).
    pub fn with_store(mut self, store: impl Into<Cow<'static, str>>) -> Self {
        if self.0.store.is_none() {
            self.0.store = Some(store.into());
        }
        self
    }

    /// Sets the operation, unless one is set already.
    pub fn with_operation(mut self, operation: Operation) -> Self {
        if self.0.operation.is_none() {
            self.0.operation = Some(operation);
        }
        self
    }

    /// Sets the collection, unless one is set already.
    pub fn with_collection(mut self, collection: &str) -> Self {
        if self.0.collection.is_none() {
            self.0.collection = Some(collection.to_owned());
        }
        self
    }

    /// Sets the key, unless one is set already.
    pub fn with_key(mut self, key: &str) -> Self {
        if self.0.key.is_none() {
            self.0.key = Some(key.to_owned());
        }
        self
    }

    /// Replaces the collection and key the error names, keeping everything else (kind,
    /// message, temporary flag, store, operation, source). For layers that rename what they
    /// pass on (key prefixes, a single backing collection): the caller sees its own names.
    ///
    /// ```
    /// use kv_core::{Error, ErrorKind};
    ///
    /// let inner = Error::new(ErrorKind::Corrupt, "bad bytes").with_key("app__alice");
    /// let err = inner.rename(None, Some("alice"));
    /// assert_eq!(err.key(), Some("alice"));
    /// assert_eq!(err.kind(), ErrorKind::Corrupt);
    /// ```
    pub fn rename(mut self, collection: Option<&str>, key: Option<&str>) -> Self {
        self.0.collection = collection.map(str::to_owned);
        self.0.key = key.map(str::to_owned);
        self
    }

    /// Sets store, operation, collection and key at once (each only if not set yet).
    pub fn with_context(
        self,
        store: &'static str,
        operation: Operation,
        collection: Option<&str>,
        key: Option<&str>,
    ) -> Self {
        let mut err = self.with_store(store).with_operation(operation);
        if let Some(c) = collection {
            err = err.with_collection(c);
        }
        if let Some(k) = key {
            err = err.with_key(k);
        }
        err
    }

    /// Attaches the underlying cause. Never attach anything whose message may contain a secret.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// Attaches an already boxed cause.
    pub fn with_boxed_source(mut self, source: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        self.0.source = Some(source);
        self
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error naming the store and operation.
    pub fn unsupported(store: &'static str, operation: Operation, what: &str) -> Self {
        Error::new(
            ErrorKind::Unsupported,
            format!("the {store} store does not support {what}"),
        )
        .with_store(store)
        .with_operation(operation)
    }
}

/// Writes `label: "name"`, cutting long names on a char boundary.
fn write_name(f: &mut fmt::Formatter<'_>, label: &str, name: &str) -> fmt::Result {
    if name.len() <= MAX_NAME_IN_MESSAGE {
        write!(f, "{label}: {name:?}")
    } else {
        let mut end = MAX_NAME_IN_MESSAGE;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{label}: {:?}… ({} bytes)", &name[..end], name.len())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        write!(f, "{}: {}", i.kind, i.message)?;
        let mut open = false;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if open { ", " } else { " (" };
            open = true;
            f.write_str(s)
        };
        if let Some(s) = &i.store {
            sep(f)?;
            write!(f, "store: {s}")?;
        }
        if let Some(op) = i.operation {
            sep(f)?;
            write!(f, "op: {op}")?;
        }
        if let Some(c) = &i.collection {
            sep(f)?;
            write_name(f, "collection", c)?;
        }
        if let Some(k) = &i.key {
            sep(f)?;
            write_name(f, "key", k)?;
        }
        if open {
            f.write_str(")")?;
        }
        if let Some(src) = &i.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind)
            .field("temporary", &i.temporary)
            .field("message", &i.message);
        if let Some(s) = &i.store {
            d.field("store", s);
        }
        if let Some(op) = &i.operation {
            d.field("operation", op);
        }
        if let Some(c) = &i.collection {
            d.field("collection", c);
        }
        if let Some(k) = &i.key {
            d.field("key", k);
        }
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            Io::TimedOut => ErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected
            | Io::BrokenPipe
            | Io::Interrupted
            | Io::WouldBlock => ErrorKind::Unavailable,
            Io::InvalidData | Io::UnexpectedEof => ErrorKind::Corrupt,
            _ => ErrorKind::Backend,
        };
        Error::new(kind, "i/o error").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_partial_context() {
        let e = Error::new(ErrorKind::Corrupt, "bad envelope").with_key("k");
        assert_eq!(e.to_string(), "corrupt data: bad envelope (key: \"k\")");
        let e = Error::new(ErrorKind::Backend, "boom");
        assert_eq!(e.to_string(), "backend error: boom");
    }

    #[test]
    fn long_keys_are_cut_on_char_boundary() {
        let key = "é".repeat(100);
        let e = Error::new(ErrorKind::InvalidKey, "too long").with_key(&key);
        let s = e.to_string();
        assert!(s.contains("(200 bytes)"), "{s}");
        assert!(s.len() < 150, "{s}");
    }

    #[test]
    fn innermost_context_wins() {
        let e = Error::new(ErrorKind::Backend, "x")
            .with_store("disk")
            .with_store("layer");
        assert_eq!(e.store(), Some("disk"));
    }

    #[test]
    fn io_errors_map_to_temporary_kinds() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
    }

    #[test]
    fn error_is_small() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
