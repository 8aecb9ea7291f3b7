//! The retry policy: which failed attempts are tried again, and after how long.

use std::time::Duration;

use super::backoff::Backoff;

/// How failed attempts (of a start or a cancel request) are retried: exponential backoff with
/// jitter, until an attempt succeeds, fails with a non-retryable error, the operation's timeout
/// expires, or `maximum_attempts` is reached.
///
/// The defaults are Temporal's machinery's: initial interval 1 s, coefficient 2, maximum interval
/// 1 h, no attempt limit (retries stop at the schedule-to-close timeout). Temporal does not let
/// callers change them; here an endpoint ([`EndpointConfig::retry`](crate::client::EndpointConfig::retry))
/// and a call ([`Call::retry_policy`](crate::Call::retry_policy)) can.
///
/// Its delays are computed by its [`backoff`](Self::backoff), the crate's one backoff engine.
/// The delay before retry `n` (after the `n`-th failed attempt) is
/// `interval(n) = min(initial_interval * backoff_coefficient^(n-1), maximum_interval)`, jittered:
/// `delay = interval(n) * (1 - jitter * r)` with `r` uniform in `[0, 1)`, rounded up to whole
/// milliseconds. `jitter = 1` (the
/// default) is *full jitter* (a delay anywhere in `(0, interval]`); Temporal's server uses `0.2`.
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::machinery::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .initial_interval(Duration::from_millis(100))
///     .maximum_interval(Duration::from_secs(5))
///     .maximum_attempts(10);
/// assert_eq!(policy.interval(1), Duration::from_millis(100));
/// assert_eq!(policy.interval(3), Duration::from_millis(400));
/// assert_eq!(policy.interval(20), Duration::from_secs(5));
/// // r = 0.5 halves the interval under full jitter.
/// assert_eq!(policy.delay(2, 0.5), Duration::from_millis(100));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The interval before the first retry (default 1 s).
    pub initial_interval: Duration,
    /// How much the interval grows after each retry (default 2.0; at least 1).
    pub backoff_coefficient: f64,
    /// The largest interval (default 1 h).
    pub maximum_interval: Duration,
    /// The most attempts, the first included; `None` (the default) retries until a timeout.
    pub maximum_attempts: Option<u32>,
    /// How much of the interval is randomized, from 0 (none) to 1 (full jitter, the default).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(3600),
            maximum_attempts: None,
            jitter: 1.0,
        }
    }
}

impl RetryPolicy {
    /// Temporal's defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy that makes one attempt and never retries.
    pub fn no_retries() -> Self {
        Self::default().maximum_attempts(1)
    }

    /// Sets the interval before the first retry.
    #[must_use]
    pub fn initial_interval(mut self, interval: Duration) -> Self {
        self.initial_interval = interval;
        self
    }

    /// Sets the growth factor of the interval (values below 1 are taken as 1).
    #[must_use]
    pub fn backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = if coefficient.is_finite() {
            coefficient.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Sets the largest interval.
    #[must_use]
    pub fn maximum_interval(mut self, interval: Duration) -> Self {
        self.maximum_interval = interval;
        self
    }

    /// Limits the number of attempts, the first included (0 is taken as 1).
    #[must_use]
    pub fn maximum_attempts(mut self, attempts: u32) -> Self {
        self.maximum_attempts = Some(attempts.max(1));
        self
    }

    /// Sets the randomized share of each interval, clamped to `[0, 1]`.
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self
    }

    /// The schedule of this policy's delays: the [`Backoff`] every retry of the crate waits.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            self.initial_interval,
            self.backoff_coefficient,
            self.maximum_interval,
        )
        .jitter(self.jitter)
    }

    /// The interval before retry `retry` (1 for the first retry), without jitter (see
    /// [`Backoff::interval`]).
    pub fn interval(&self, retry: u32) -> Duration {
        self.backoff().interval(retry)
    }

    /// The delay before retry `retry`, given a random number `random` in `[0, 1)`, rounded up to
    /// whole milliseconds (the resolution of Tokio's timers, so the delay is exactly what is
    /// waited; see [`Backoff::delay`]).
    pub fn delay(&self, retry: u32, random: f64) -> Duration {
        self.backoff().delay(retry, random)
    }

    /// Whether attempt number `attempt` (1 for the first) may be made.
    pub fn allows_attempt(&self, attempt: u32) -> bool {
        self.maximum_attempts.is_none_or(|max| attempt <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_temporals() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial_interval, Duration::from_secs(1));
        assert_eq!(p.backoff_coefficient, 2.0);
        assert_eq!(p.maximum_interval, Duration::from_secs(3600));
        assert_eq!(p.maximum_attempts, None);
        let intervals: Vec<u64> = (1..=14).map(|n| p.interval(n).as_secs()).collect();
        assert_eq!(
            intervals,
            [
                1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
            ]
        );
        assert_eq!(p.interval(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_scales_the_interval() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(p.delay(3, 0.75), Duration::from_secs(1));
        let temporal_like = RetryPolicy::default().jitter(0.2);
        assert_eq!(temporal_like.delay(1, 0.5), Duration::from_millis(900));
        let none = RetryPolicy::default().jitter(0.0);
        assert_eq!(none.delay(2, 0.9), Duration::from_secs(2));
    }

    /// A seed's schedule is pinned: the backoff engine must wait the same delays in every
    /// version.
    #[test]
    fn a_seeded_schedule_is_pinned() {
        let jitter = crate::machinery::Jitter::seeded(7);
        let p = RetryPolicy::default();
        let delays: Vec<u128> = (1..=4)
            .map(|n| p.delay(n, jitter.next_fraction()).as_millis())
            .collect();
        assert_eq!(delays, [236, 1069, 3978, 5590]);
    }

    #[test]
    fn attempts_and_clamping() {
        let p = RetryPolicy::no_retries();
        assert!(p.allows_attempt(1));
        assert!(!p.allows_attempt(2));
        assert!(RetryPolicy::default().allows_attempt(1_000_000));
        assert_eq!(
            RetryPolicy::default()
                .backoff_coefficient(0.5)
                .backoff_coefficient,
            1.0
        );
        assert_eq!(RetryPolicy::default().jitter(3.0).jitter, 1.0);
        assert_eq!(
            RetryPolicy::default().maximum_attempts(0).maximum_attempts,
            Some(1)
        );
    }
}
