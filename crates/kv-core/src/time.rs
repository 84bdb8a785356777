//! Absolute points in time, as stored with entries.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, ErrorKind, Result};

/// A point in time in UTC, with microsecond resolution (the finest any backend keeps).
///
/// Stored as microseconds since the Unix epoch, so it is `Copy`, totally ordered and cheap to
/// compare on the hot path. `Display` prints RFC 3339 (`2026-11-22T02:56:14.569741Z`).
///
/// ```
/// use std::time::Duration;
/// use kv_core::Timestamp;
///
/// let t = Timestamp::from_unix_micros(1_795_316_174_569_741);
/// assert_eq!(t.to_string(), "2026-11-22T02:56:14.569741Z");
/// assert_eq!(Timestamp::parse("2026-11-22T02:56:14.569741+00:00").unwrap(), t);
/// let later = t.checked_add(Duration::from_secs(100)).unwrap();
/// assert_eq!(later.duration_since(t), Some(Duration::from_secs(100)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The current time from the system clock.
    #[inline]
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// From microseconds since the Unix epoch (negative = before 1970).
    pub const fn from_unix_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// From milliseconds since the Unix epoch, saturating at the representable range.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(1000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch, rounded towards negative infinity.
    pub const fn as_unix_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// From a [`SystemTime`], truncated to microseconds and saturating at ±292 000 years.
    #[inline]
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_micros(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(self.0.unsigned_abs())
        }
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        let micros = i64::try_from(d.as_micros()).ok()?;
        self.0.checked_add(micros).map(Timestamp)
    }

    /// `self + d` rounded up to whole microseconds, so that a lifetime is never shortened.
    pub(crate) fn checked_add_ceil(self, d: Duration) -> Option<Self> {
        let mut micros = d.as_micros();
        if d.subsec_nanos() % 1000 != 0 {
            micros += 1;
        }
        self.0
            .checked_add(i64::try_from(micros).ok()?)
            .map(Timestamp)
    }

    /// The time from `earlier` to `self`, or `None` if `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let diff = self.0.checked_sub(earlier.0)?;
        u64::try_from(diff).ok().map(Duration::from_micros)
    }

    /// Parses ISO 8601 / RFC 3339 with an offset (`Z`, `+00:00`, ...); a time without an offset
    /// is rejected because it is ambiguous.
    pub fn parse(s: &str) -> Result<Self> {
        crate::iso8601::parse_iso8601(s)
            .map(Timestamp)
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("invalid timestamp {s:?}: {e}"),
                )
            })
    }

    /// RFC 3339 in UTC with six fraction digits, e.g. `2026-11-22T02:56:14.569741Z`.
    pub fn to_rfc3339(self) -> String {
        crate::iso8601::format_rfc3339_micros(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Self::from_system_time(t)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_round_trip() {
        let now = SystemTime::now();
        let t = Timestamp::from_system_time(now);
        let back = t.to_system_time();
        let diff = now.duration_since(back).unwrap();
        assert!(diff < Duration::from_micros(1));
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(
            Timestamp::from_system_time(before).as_unix_micros(),
            -86_400_000_000
        );
        assert_eq!(
            Timestamp::from_unix_micros(-86_400_000_000).to_system_time(),
            before
        );
    }

    #[test]
    fn add_rounds_up_never_shortening() {
        let t = Timestamp::from_unix_micros(10);
        assert_eq!(
            t.checked_add_ceil(Duration::from_nanos(1))
                .unwrap()
                .as_unix_micros(),
            11
        );
        assert_eq!(
            t.checked_add_ceil(Duration::from_micros(5))
                .unwrap()
                .as_unix_micros(),
            15
        );
        assert!(t.checked_add(Duration::MAX).is_none());
    }

    #[test]
    fn millis_floor() {
        assert_eq!(Timestamp::from_unix_micros(-1).as_unix_millis(), -1);
        assert_eq!(Timestamp::from_unix_micros(1999).as_unix_millis(), 1);
    }
}
