//! Completion timestamps: `Nexus-Operation-Start-Time` is an HTTP-date,
//! `Nexus-Operation-Close-Time` is RFC 3339 in UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last instant both formats can write: the end of year 9999 (UTC).
fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999)
}

/// `time` within what the formats can write: from the Unix epoch to the end of year 9999.
fn writable(time: SystemTime) -> SystemTime {
    time.clamp(UNIX_EPOCH, latest())
}

/// A timestamp header that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {format} timestamp `{value}`")]
pub struct TimestampError {
    /// What was expected: `HTTP-date` or `RFC 3339`.
    pub format: &'static str,
    /// The rejected value.
    pub value: String,
}

/// Formats a time as an HTTP-date (`Mon, 02 Jan 2006 15:04:05 GMT`), whole seconds. A time the
/// format cannot express is clamped: before 1970 as the Unix epoch, after year 9999 as its last
/// second.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use nexus_runtime::protocol::format_http_date;
/// let t = UNIX_EPOCH + Duration::from_secs(1_795_438_913);
/// assert_eq!(format_http_date(t), "Mon, 23 Nov 2026 13:01:53 GMT");
/// ```
pub fn format_http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(writable(time))
}

/// Parses an HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms).
pub fn parse_http_date(value: &str) -> Result<SystemTime, TimestampError> {
    httpdate::parse_http_date(value.trim()).map_err(|_| TimestampError {
        format: "HTTP-date",
        value: value.to_owned(),
    })
}

/// Formats a time as RFC 3339 in UTC with `Z`, with 9 fractional digits (none when the time is a
/// whole second), as Temporal sends `Nexus-Operation-Close-Time`. A time before 1970 or after
/// year 9999 is clamped to that range, as in [`format_http_date`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use nexus_runtime::protocol::format_rfc3339;
/// let t = UNIX_EPOCH + Duration::new(1_795_438_914, 355_519_283);
/// assert_eq!(format_rfc3339(t), "2026-11-23T13:01:54.355519283Z");
/// ```
pub fn format_rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339(writable(time)).to_string()
}

/// Parses an RFC 3339 timestamp with any number of fractional digits and a `Z` or numeric offset.
/// The instant must lie between the Unix epoch and the end of year 9999 (UTC), what
/// [`format_rfc3339`] can write back.
pub fn parse_rfc3339(value: &str) -> Result<SystemTime, TimestampError> {
    let error = || TimestampError {
        format: "RFC 3339",
        value: value.to_owned(),
    };
    let text = value.trim();
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return parse_utc(local).ok_or_else(error);
    }
    // A numeric offset `±HH:MM`: parse the local time as UTC, then shift it.
    let split = text.len().checked_sub(6).ok_or_else(error)?;
    let (local, offset) = (
        text.get(..split).ok_or_else(error)?,
        text.get(split..).ok_or_else(error)?,
    );
    let bytes = offset.as_bytes();
    let sign = match bytes.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(error()),
    };
    if bytes.get(3) != Some(&b':') {
        return Err(error());
    }
    let hours: u64 = digits(&offset[1..3]).ok_or_else(error)?;
    let minutes: u64 = digits(&offset[4..6]).ok_or_else(error)?;
    if hours > 23 || minutes > 59 {
        return Err(error());
    }
    let shift = Duration::from_secs((hours * 60 + minutes) * 60);
    let as_utc = parse_utc(local).ok_or_else(error)?;
    // Local time = UTC + offset, so UTC = local - offset.
    if sign > 0 {
        as_utc.checked_sub(shift)
    } else {
        as_utc.checked_add(shift)
    }
    // An offset may carry a time out of the range a local time is read in.
    .filter(|utc| (UNIX_EPOCH..=latest()).contains(utc))
    .ok_or_else(error)
}

fn digits(s: &str) -> Option<u64> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]` read as UTC.
fn parse_utc(local: &str) -> Option<SystemTime> {
    let bytes = local.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b'T' | b't') {
        return None;
    }
    if let Some(fraction) = local.get(19..) {
        let digits = fraction.strip_prefix('.');
        if !fraction.is_empty()
            && !digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
    }
    humantime::parse_rfc3339(&format!("{local}Z")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn http_dates_round_trip_to_the_second() {
        let t = UNIX_EPOCH + Duration::new(1_795_438_913, 999_000_000);
        let text = format_http_date(t);
        assert_eq!(text, "Mon, 23 Nov 2026 13:01:53 GMT");
        assert_eq!(
            parse_http_date(&text).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_795_438_913)
        );
        // The obsolete forms HTTP still allows.
        let rfc850 = parse_http_date("Monday, 23-Nov-26 13:01:53 GMT").unwrap();
        let asctime = parse_http_date("Mon Nov 23 13:01:53 2026").unwrap();
        assert_eq!(rfc850, asctime);
        for bad in [
            "",
            "yesterday",
            "2026-11-23T13:01:53Z",
            "Mon, 32 Nov 2026 13:01:53 GMT",
        ] {
            let err = parse_http_date(bad).unwrap_err();
            assert_eq!(err.format, "HTTP-date");
        }
    }

    #[test]
    fn rfc3339_parses_temporal_close_times_and_offsets() {
        let expected = UNIX_EPOCH + Duration::new(1_795_438_914, 355_519_283);
        assert_eq!(
            parse_rfc3339("2026-11-23T13:01:54.355519283Z").unwrap(),
            expected
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T14:31:54.355519283+01:30").unwrap(),
            expected
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T12:01:54.355519283-01:00").unwrap(),
            expected
        );
        for (text, nanos) in [
            ("2026-11-23T13:01:54Z", 0),
            ("2026-11-23T13:01:54.3Z", 300_000_000),
            ("2026-11-23T13:01:54.355Z", 355_000_000),
            ("2026-11-23T13:01:54.355519Z", 355_519_000),
        ] {
            assert_eq!(
                parse_rfc3339(text).unwrap(),
                UNIX_EPOCH + Duration::new(1_795_438_914, nanos),
                "{text}"
            );
        }
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T13:01:54",
            "2026-11-23 13:01:54Z",
            "2026-11-23T13:01:54.Z",
            "2026-11-23T13:01:54+1:00",
            "2026-11-23T13:01:54+01:99",
            "Mon, 23 Nov 2026 13:01:53 GMT",
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert_eq!(err.format, "RFC 3339", "{bad}");
        }
    }

    #[test]
    fn rfc3339_formats_utc_with_z() {
        let whole = UNIX_EPOCH + Duration::from_secs(1_795_438_914);
        assert_eq!(format_rfc3339(whole), "2026-11-23T13:01:54Z");
        let t = UNIX_EPOCH + Duration::new(1_795_438_914, 1);
        assert_eq!(format_rfc3339(t), "2026-11-23T13:01:54.000000001Z");
        assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
    }

    #[test]
    fn times_beyond_what_the_formats_express_are_refused_or_clamped() {
        // An offset can carry a local time out of 1970..=9999, which neither format could write
        // back (they used to panic on such a time).
        for bad in ["1970-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(format_rfc3339(before), "1970-01-01T00:00:00Z");
        assert_eq!(format_http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        let after = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(format_rfc3339(after), "9999-12-31T23:59:59.999999999Z");
        assert_eq!(format_http_date(after), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(parse_rfc3339(&format_rfc3339(after)).unwrap(), latest());
    }
}
