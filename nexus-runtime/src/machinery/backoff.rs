//! The backoff engine: the one place a delay before a retry is computed.
//!
//! Every retry in the crate waits what a [`Backoff`] computes: the client's start and cancel
//! attempts ([`RetryPolicy`](super::RetryPolicy)), the completion sender's in-memory retries
//! ([`CompletionRetry`](crate::http::CompletionRetry)), the outbox's durable ones
//! ([`OutboxOptions::retry`](crate::service::OutboxOptions::retry)), the Temporal worker's
//! polls, and the background loops that retry a store or a lease ([`Retrying`]). Those types
//! are configurations: each builds a `Backoff` and asks it for delays.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// An exponential backoff with jitter: the schedule of delays before retries.
///
/// The delay before retry `n` (after the `n`-th failed attempt) is
/// `interval(n) = min(initial_interval * coefficient^(n-1), maximum_interval)`, jittered:
/// `delay = interval(n) * (1 - jitter * r)` with `r` uniform in `[0, 1)` (drawn from a
/// [`Jitter`](super::Jitter), seeded for reproducible schedules), rounded up to whole
/// milliseconds, the resolution of Tokio's timers, so the delay is exactly what is waited.
/// `jitter = 0` (the default of [`Backoff::new`]) gives the same schedule every time, with no
/// random number drawn.
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::machinery::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(1));
/// assert_eq!(backoff.interval(1), Duration::from_millis(100));
/// assert_eq!(backoff.interval(3), Duration::from_millis(400));
/// assert_eq!(backoff.interval(10), Duration::from_secs(1));
/// // Full jitter with r = 0.5 halves the interval.
/// assert_eq!(backoff.jitter(1.0).delay(2, 0.5), Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    initial_interval: Duration,
    coefficient: f64,
    maximum_interval: Duration,
    jitter: f64,
}

impl Backoff {
    /// A backoff from `initial_interval`, growing by `coefficient` (values below 1, or NaN, are
    /// taken as 1) up to `maximum_interval`, without jitter.
    pub fn new(initial_interval: Duration, coefficient: f64, maximum_interval: Duration) -> Self {
        Self {
            initial_interval,
            coefficient: if coefficient.is_nan() {
                1.0
            } else {
                coefficient.max(1.0)
            },
            maximum_interval,
            jitter: 0.0,
        }
    }

    /// Sets the randomized share of each interval, clamped to `[0, 1]` (1, or not finite, is full
    /// jitter: a delay anywhere in `(0, interval]`).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self
    }

    /// The interval before retry `retry` (1 for the first retry), without jitter.
    pub fn interval(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(1023) as i32;
        let factor = self.coefficient.max(1.0).powi(exponent);
        let secs = self.initial_interval.as_secs_f64() * factor;
        let max = self.maximum_interval.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.maximum_interval
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }

    /// The delay before retry `retry`, given a random number `random` in `[0, 1)`, rounded up to
    /// whole milliseconds.
    pub fn delay(&self, retry: u32, random: f64) -> Duration {
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let share = 1.0 - self.jitter.clamp(0.0, 1.0) * random;
        let millis = (self.interval(retry).as_secs_f64() * share * 1000.0).ceil();
        Duration::from_millis(millis as u64)
    }

    /// A schedule in progress, starting at the first retry.
    pub(crate) fn retrying(self) -> Retrying {
        Retrying {
            backoff: self,
            retries: 0,
        }
    }
}

/// How the crate's background loops retry a store (or a lease) that failed: 100 ms doubling to
/// `maximum`, without jitter.
pub(crate) fn store_retry(maximum: Duration) -> Backoff {
    Backoff::new(Duration::from_millis(100), 2.0, maximum)
}

/// A [`Backoff`] schedule in progress, for a loop that retries until it succeeds or is stopped.
#[derive(Debug)]
pub(crate) struct Retrying {
    backoff: Backoff,
    retries: u32,
}

impl Retrying {
    /// The delay before the next retry (advancing the schedule); unjittered.
    pub fn next_delay(&mut self) -> Duration {
        self.retries = self.retries.saturating_add(1);
        self.backoff.delay(self.retries, 0.0)
    }

    /// The delay [`next_delay`](Self::next_delay) will give, without advancing.
    pub fn peek(&self) -> Duration {
        self.backoff.delay(self.retries.saturating_add(1), 0.0)
    }

    /// Waits the next delay; `false` if `stop` fired first.
    pub async fn sleep(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_retries_double_to_their_maximum() {
        let mut retrying = store_retry(Duration::from_secs(10)).retrying();
        let delays: Vec<u64> = (0..9)
            .map(|_| retrying.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
    }

    #[test]
    fn coefficients_below_one_do_not_shrink_the_interval() {
        let backoff = Backoff::new(Duration::from_secs(1), 0.5, Duration::from_secs(8));
        assert_eq!(backoff.interval(4), Duration::from_secs(1));
        assert_eq!(
            backoff.jitter(f64::NAN).delay(1, 0.25),
            Duration::from_millis(750)
        );
    }
}
