//! The TTL rules every store applies the same way.

use std::time::Duration;

use crate::{Capability, Error, ErrorKind, Result, Timestamp};

/// Checks a TTL and turns it into an absolute expiry, computed from `now`.
///
/// `None` → `Ok(None)` (never expires). A zero TTL, or one so large that the expiry cannot be
/// represented, is an [`ErrorKind::InvalidTtl`] error. The expiry is rounded **up** to whole
/// microseconds: a store may keep an entry slightly longer than asked, never shorter.
///
/// ```
/// use std::time::Duration;
/// use kv_core::{ttl, ErrorKind, Timestamp};
///
/// let now = Timestamp::from_unix_micros(0);
/// assert_eq!(ttl::expires_at(now, Some(Duration::from_secs(2))).unwrap(),
///            Some(Timestamp::from_unix_micros(2_000_000)));
/// assert_eq!(ttl::expires_at(now, None).unwrap(), None);
/// assert_eq!(ttl::expires_at(now, Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidTtl);
/// ```
pub fn expires_at(now: Timestamp, ttl: Option<Duration>) -> Result<Option<Timestamp>> {
    match ttl {
        None => Ok(None),
        Some(d) => {
            validate(d)?;
            now.checked_add_ceil(d).map(Some).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidTtl,
                    format!("ttl of {d:?} is too large to express as a point in time"),
                )
            })
        }
    }
}

/// Rejects a zero TTL.
pub fn validate(ttl: Duration) -> Result<()> {
    if ttl.is_zero() {
        return Err(Error::new(
            ErrorKind::InvalidTtl,
            "ttl must be greater than zero (use no ttl for entries that never expire)",
        ));
    }
    Ok(())
}

/// Checks a TTL against a store's capability: rejects TTLs on stores without TTL support and
/// TTLs above [`Capability::ttl_max`].
pub fn check_supported(cap: &Capability, ttl: Option<Duration>) -> Result<()> {
    let Some(d) = ttl else { return Ok(()) };
    validate(d)?;
    if !cap.ttl {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "this store does not support expiring entries (ttl)",
        ));
    }
    if let Some(max) = cap.ttl_max {
        if d > max {
            return Err(Error::new(
                ErrorKind::InvalidTtl,
                format!("ttl of {d:?} exceeds this store's maximum of {max:?}"),
            ));
        }
    }
    Ok(())
}

/// Rounds a TTL up to a granularity (e.g. whole milliseconds for Redis `PX`), never down.
///
/// ```
/// use std::time::Duration;
/// use kv_core::ttl::round_up;
///
/// assert_eq!(round_up(Duration::from_micros(1500), Duration::from_millis(1)), Duration::from_millis(2));
/// assert_eq!(round_up(Duration::from_millis(3), Duration::from_millis(1)), Duration::from_millis(3));
/// ```
pub fn round_up(ttl: Duration, granularity: Duration) -> Duration {
    let g = granularity.as_nanos();
    if g <= 1 {
        return ttl;
    }
    let n = ttl.as_nanos();
    let rounded = n.div_ceil(g).saturating_mul(g);
    let secs = u64::try_from(rounded / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (rounded % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_ttl_is_invalid_not_a_panic() {
        let e = expires_at(Timestamp::now(), Some(Duration::MAX)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTtl);
    }

    #[test]
    fn sub_microsecond_ttl_rounds_up() {
        let now = Timestamp::from_unix_micros(100);
        let e = expires_at(now, Some(Duration::from_nanos(1)))
            .unwrap()
            .unwrap();
        assert_eq!(e.as_unix_micros(), 101);
    }

    #[test]
    fn capability_checks() {
        let cap = Capability {
            ttl: true,
            ttl_max: Some(Duration::from_secs(10)),
            ..Capability::default()
        };
        assert!(check_supported(&cap, Some(Duration::from_secs(10))).is_ok());
        assert_eq!(
            check_supported(&cap, Some(Duration::from_secs(11)))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidTtl
        );
        let none = Capability::default();
        assert_eq!(
            check_supported(&none, Some(Duration::from_secs(1)))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        assert!(check_supported(&none, None).is_ok());
    }
}
