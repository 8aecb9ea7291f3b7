//! `Request-Timeout` and `Operation-Timeout` values: `<number>(ms|s|m)`, millisecond resolution.

use std::time::Duration;

/// A timeout header value that does not match `^(\d+(?:\.\d+)?)(ms|s|m)$`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration `{value}`: expected a number followed by `ms`, `s` or `m`, like `1500ms`"
)]
pub struct DurationError {
    /// The rejected value.
    pub value: String,
}

/// The longest `Request-Timeout` or `Operation-Timeout` a handler accepts: 1000 years (of 365
/// days), more than any caller means (Go's largest `time.Duration` is about 292 years), and well
/// within what clocks and stores hold. Longer values are refused as BAD_REQUEST.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(1000 * 365 * 24 * 60 * 60);

/// Parses a Nexus duration such as `1500ms`, `1.5s` or `2m`, as the Go reference does: the
/// number must match `\d+(\.\d+)?`, and the result is truncated to whole milliseconds. A whole
/// number is read exactly (so what [`format_duration`] writes, up to `u64::MAX` ms, reads back),
/// a fraction as a double, as Go does.
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::protocol::parse_duration;
///
/// assert_eq!(parse_duration("1.3s").unwrap(), Duration::from_millis(1300));
/// assert_eq!(parse_duration("10.1ms").unwrap(), Duration::from_millis(10));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(value: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        value: value.to_owned(),
    };
    let (number, unit_ms) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60_000)
    } else {
        return Err(error());
    };
    let (int, frac) = match number.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (number, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(error());
    }
    let millis = match frac {
        // A whole number is exact, however large (a float would round beyond 2^53 ms).
        None => int.parse::<u64>().ok().and_then(|n| n.checked_mul(unit_ms)),
        Some(_) => {
            let millis = number.parse::<f64>().map_err(|_| error())? * unit_ms as f64;
            // Durations beyond about 584 million years do not fit; nobody means them.
            (millis.is_finite() && millis < u64::MAX as f64).then(|| millis.trunc() as u64)
        }
    };
    millis.map(Duration::from_millis).ok_or_else(error)
}

/// Formats a duration as whole milliseconds, `<n>ms`, as Go and Temporal clients send it.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(nexus_runtime::protocol::format_duration(Duration::from_micros(9_999_700)), "9999ms");
/// ```
pub fn format_duration(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_go_reference() {
        let ok = [
            ("10ms", 10),
            ("10.1ms", 10),
            ("1s", 1_000),
            ("1.3s", 1_300),
            ("999m", 999 * 60_000),
            ("0ms", 0),
            ("9999ms", 9_999),
            ("0.5m", 30_000),
        ];
        for (input, ms) in ok {
            assert_eq!(
                parse_duration(input).unwrap(),
                Duration::from_millis(ms),
                "{input}"
            );
        }
        for bad in [
            "invalid", "", "10", "ms", "1.s", ".5s", "1h", "-1s", "1 s", " 1s", "1e3ms", "1.2.3s",
            "10us", "1,5s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid duration"), "{bad}");
        }
        assert!(parse_duration("99999999999999999999999999m").is_err());
        assert!(parse_duration("18446744073709551615ms").is_ok());
        assert!(parse_duration("307445734561825m").is_ok());
        assert!(
            parse_duration("307445734561826m").is_err(),
            "overflows u64 ms"
        );
        // Above 2^53 a float would round: whole numbers are read exactly.
        assert_eq!(
            parse_duration("9007199254740993ms").unwrap(),
            Duration::from_millis(9_007_199_254_740_993)
        );
    }

    #[test]
    fn formats_milliseconds() {
        assert_eq!(format_duration(Duration::ZERO), "0ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10000ms");
        let d = Duration::from_millis(19_997);
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }
}
