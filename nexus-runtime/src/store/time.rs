//! Stored times: whole microseconds since the Unix epoch, in a signed 64-bit integer (about
//! ±292,000 years), the same in every store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::StoreError;

/// `t` in microseconds since the epoch (negative before it).
pub(crate) fn to_micros(t: SystemTime) -> Result<i64, StoreError> {
    let out_of_range = || StoreError::Invalid(format!("time {t:?} is out of the storable range"));
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).map_err(|_| out_of_range()),
        Err(e) => {
            // Round towards the past, as truncation does after the epoch.
            let d = e.duration();
            let micros = i64::try_from(d.as_micros()).map_err(|_| out_of_range())?;
            let partial = d.subsec_nanos() % 1_000 != 0;
            Ok(-micros - i64::from(partial))
        }
    }
}

/// The time `micros` microseconds after the epoch.
pub(crate) fn from_micros(micros: i64) -> Result<SystemTime, StoreError> {
    let d = Duration::from_micros(micros.unsigned_abs());
    let t = if micros >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.ok_or_else(|| StoreError::corrupt(format!("stored time {micros} µs is out of range")))
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn opt_to_micros(t: Option<SystemTime>) -> Result<Option<i64>, StoreError> {
    t.map(to_micros).transpose()
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn opt_from_micros(micros: Option<i64>) -> Result<Option<SystemTime>, StoreError> {
    micros.map(from_micros).transpose()
}

/// `t` truncated to what a store keeps (whole microseconds). The memory store applies it so all
/// stores give back the same times.
pub(crate) fn truncate(t: SystemTime) -> Result<SystemTime, StoreError> {
    from_micros(to_micros(t)?)
}

pub(crate) fn truncate_opt(t: Option<SystemTime>) -> Result<Option<SystemTime>, StoreError> {
    t.map(truncate).transpose()
}

/// `now + lease`, in microseconds.
pub(crate) fn expiry_micros(now: SystemTime, lease: Duration) -> Result<i64, StoreError> {
    let until = now
        .checked_add(lease)
        .ok_or_else(|| StoreError::Invalid(format!("lease of {lease:?} overflows the clock")))?;
    to_micros(until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_microseconds_and_truncates_the_rest() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(to_micros(t).unwrap(), 1_700_000_000_123_456);
        assert_eq!(
            truncate(t).unwrap(),
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000)
        );
        let before = UNIX_EPOCH - Duration::new(1, 500);
        let micros = to_micros(before).unwrap();
        assert_eq!(micros, -1_000_001);
        assert!(from_micros(micros).unwrap() <= before);
        assert_eq!(from_micros(0).unwrap(), UNIX_EPOCH);
    }
}
