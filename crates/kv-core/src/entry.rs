//! What a read returns: the value and its metadata.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::Timestamp;

/// An opaque version of an entry, for compare-and-swap ([`PutMode::IfVersion`]).
///
/// Read it from [`Entry::version`] and pass it back unchanged; its content is the backend's
/// business (a counter, a revision, an ETag). Two versions are equal only if they come from the
/// same write of the same entry.
///
/// [`PutMode::IfVersion`]: crate::PutMode::IfVersion
///
/// ```
/// use kv_core::Version;
///
/// let v = Version::from_u64(7);
/// assert_eq!(v.as_u64(), Some(7));
/// assert_eq!(Version::from_bytes(b"etag-1".to_vec()).as_bytes(), Some(&b"etag-1"[..]));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(VersionRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum VersionRepr {
    Number(u64),
    Opaque(Bytes),
}

impl Version {
    /// A numeric version (counters, revisions).
    pub const fn from_u64(v: u64) -> Self {
        Version(VersionRepr::Number(v))
    }

    /// An opaque version (ETags, hashes).
    pub fn from_bytes(v: impl Into<Bytes>) -> Self {
        Version(VersionRepr::Opaque(v.into()))
    }

    /// The number, if this is a numeric version.
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            VersionRepr::Number(n) => Some(n),
            VersionRepr::Opaque(_) => None,
        }
    }

    /// The bytes, if this is an opaque version.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            VersionRepr::Number(_) => None,
            VersionRepr::Opaque(b) => Some(b),
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            VersionRepr::Number(n) => write!(f, "Version({n})"),
            VersionRepr::Opaque(b) => write!(f, "Version({b:?})"),
        }
    }
}

/// A stored value with its metadata, as returned by reads.
///
/// ```
/// use bytes::Bytes;
/// use kv_core::Entry;
///
/// let e = Entry::new(Bytes::from_static(b"{\"name\":\"alice\"}"));
/// assert_eq!(e.value, Bytes::from_static(b"{\"name\":\"alice\"}"));
/// assert_eq!(e.expires_at, None);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The value as stored (after the codec, if a typed API wrote it).
    pub value: Bytes,
    /// When the entry was written, if the store keeps it.
    pub created_at: Option<Timestamp>,
    /// When the entry expires; `None` means never.
    pub expires_at: Option<Timestamp>,
    /// The entry's version, if the store supports compare-and-swap.
    pub version: Option<Version>,
}

impl Entry {
    /// An entry with only a value.
    #[inline]
    pub fn new(value: Bytes) -> Self {
        Entry {
            value,
            created_at: None,
            expires_at: None,
            version: None,
        }
    }

    /// Sets `created_at`.
    #[inline]
    pub fn with_created_at(mut self, t: Option<Timestamp>) -> Self {
        self.created_at = t;
        self
    }

    /// Sets `expires_at`.
    #[inline]
    pub fn with_expires_at(mut self, t: Option<Timestamp>) -> Self {
        self.expires_at = t;
        self
    }

    /// Sets `version`.
    #[inline]
    pub fn with_version(mut self, v: Option<Version>) -> Self {
        self.version = v;
        self
    }

    /// True if the entry has expired at `now`. An entry expires at its `expires_at` instant.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// The remaining lifetime at `now`: `Ttl::Never`, or the time left (zero once expired).
    pub fn ttl_at(&self, now: Timestamp) -> Ttl {
        match self.expires_at {
            None => Ttl::Never,
            Some(e) => Ttl::Remaining(e.duration_since(now).unwrap_or(Duration::ZERO)),
        }
    }
}

impl fmt::Debug for Entry {
    // Values may be secrets and may be megabytes: show their length, not their bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish()
    }
}

/// The remaining lifetime of an existing entry, as returned by
/// [`KvStore::ttl_opts`](crate::KvStore::ttl_opts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ttl {
    /// The entry never expires.
    Never,
    /// The entry expires after this time.
    Remaining(Duration),
}

impl Ttl {
    /// The remaining time, or `None` for [`Ttl::Never`].
    pub fn remaining(self) -> Option<Duration> {
        match self {
            Ttl::Never => None,
            Ttl::Remaining(d) => Some(d),
        }
    }
}
