//! The one retry loop: attempts made under a [`RetrySchedule`] until one is done, one fails for
//! good, or the schedule allows no more; between them, the progress is recorded and the
//! [`Backoff`] delay waited.
//!
//! The schedule's step ([`RetrySchedule::next_delay`]: may another attempt go, and after how
//! long) is also what the loops that cannot be run by [`retry`] take their decisions with: the
//! client's start phase, which races its waits against the operation's events, and the outbox,
//! whose wait is a due time in the store.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Backoff;
use super::jitter::Jitter;
use super::retry::RetryPolicy;

/// How one attempt of a retried action ended.
#[derive(Debug)]
pub(crate) enum Try<T, E> {
    /// It is done: the loop ends with this.
    Done(T),
    /// It failed with an error that may go away: another attempt follows if the schedule allows.
    Retry(E),
    /// It failed for good: the loop ends with this error.
    Fail(E),
}

/// When the attempts of a retried action go: the [`Backoff`] of the delays between them, the
/// most attempts, and the random source of the jitter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetrySchedule<'a> {
    backoff: Backoff,
    maximum_attempts: Option<u32>,
    jitter: Option<&'a Jitter>,
}

impl<'a> RetrySchedule<'a> {
    /// The schedule of `policy`, its jitter drawn from `jitter`.
    pub fn of_policy(policy: &RetryPolicy, jitter: &'a Jitter) -> Self {
        Self {
            backoff: policy.backoff(),
            maximum_attempts: policy.maximum_attempts,
            jitter: Some(jitter),
        }
    }

    /// `backoff`'s delays without a random number drawn, for at most `maximum_attempts` (the
    /// HTTP completion sender's in-memory retries).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub fn unjittered(backoff: Backoff, maximum_attempts: u32) -> Self {
        Self {
            backoff,
            maximum_attempts: Some(maximum_attempts.max(1)),
            jitter: None,
        }
    }

    /// After attempt number `attempt` (1 for the first) failed with a retryable error, the delay
    /// before the next one; `None` when the schedule allows no more. One random number is drawn
    /// per delay given (none otherwise), so a seeded source gives the same schedule every time.
    pub fn next_delay(&self, attempt: u32) -> Option<Duration> {
        let next = attempt.saturating_add(1);
        if self.maximum_attempts.is_some_and(|max| next > max) {
            return None;
        }
        let random = self.jitter.map_or(0.0, Jitter::next_fraction);
        Some(self.backoff.delay(attempt, random))
    }
}

/// What [`retry`] ended with.
#[derive(Debug)]
pub(crate) struct Retried<T, E> {
    /// Attempts made (reported by the HTTP completion sender).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub attempts: u32,
    /// The result of the one that was done, or the last error (for good, or the last allowed).
    pub result: Result<T, E>,
}

/// A retry about to be waited, as [`retry`] shows it to its caller.
#[derive(Debug)]
pub(crate) struct Backing<E> {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// How long until the next one (logged by the HTTP completion sender).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub delay: Duration,
    /// When the next one goes.
    pub next: Instant,
    /// Why the attempt failed.
    pub error: E,
}

/// Makes `attempt(n)` for n = 1, 2, ... until one is [`Try::Done`] or [`Try::Fail`], or
/// `schedule` allows no more; before each wait, `backing_off` records the failed attempt. The
/// loop ends when the future is dropped, too: its caller races it against what stops it.
pub(crate) async fn retry<T, E, A, Fut, B>(
    schedule: RetrySchedule<'_>,
    mut attempt: A,
    mut backing_off: B,
) -> Retried<T, E>
where
    A: FnMut(u32) -> Fut,
    Fut: Future<Output = Try<T, E>>,
    B: FnMut(Backing<E>),
{
    let mut number: u32 = 1;
    loop {
        let error = match attempt(number).await {
            Try::Done(value) => break Retried::ended(number, Ok(value)),
            Try::Fail(error) => break Retried::ended(number, Err(error)),
            Try::Retry(error) => error,
        };
        let Some(delay) = schedule.next_delay(number) else {
            break Retried::ended(number, Err(error));
        };
        let next = Instant::now() + delay;
        backing_off(Backing {
            attempt: number,
            delay,
            next,
            error,
        });
        tokio::time::sleep_until(next).await;
        number += 1;
    }
}

impl<T, E> Retried<T, E> {
    fn ended(attempts: u32, result: Result<T, E>) -> Self {
        Self { attempts, result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop waits the seeded schedule of its policy, and draws no number after the last
    /// allowed attempt.
    #[tokio::test(start_paused = true)]
    async fn a_seeded_loop_waits_the_pinned_schedule() {
        let jitter = Jitter::seeded(7);
        let policy = RetryPolicy::default().maximum_attempts(5);
        let start = Instant::now();
        let mut waited = Vec::new();
        let retried: Retried<(), u32> = retry(
            RetrySchedule::of_policy(&policy, &jitter),
            |n| async move { Try::Retry(n) },
            |b| {
                assert_eq!(b.attempt, b.error);
                waited.push(b.delay.as_millis());
            },
        )
        .await;
        assert_eq!(waited, [236, 1069, 3978, 5590]);
        assert_eq!(retried.attempts, 5);
        assert_eq!(retried.result, Err(5));
        let total: u128 = waited.iter().sum();
        assert_eq!(start.elapsed().as_millis(), total);
    }

    #[tokio::test(start_paused = true)]
    async fn done_and_fail_end_the_loop_at_once() {
        let schedule = RetrySchedule::unjittered(
            Backoff::new(Duration::from_millis(500), 2.0, Duration::from_secs(30)),
            10,
        );
        let done: Retried<u32, ()> = retry(
            schedule,
            |n| async move { if n < 3 { Try::Retry(()) } else { Try::Done(n) } },
            |_| {},
        )
        .await;
        assert_eq!((done.attempts, done.result), (3, Ok(3)));
        let failed: Retried<(), &str> = retry(
            schedule,
            |_| async { Try::Fail("no") },
            |_| panic!("no wait"),
        )
        .await;
        assert_eq!((failed.attempts, failed.result), (1, Err("no")));
    }

    #[test]
    fn an_unjittered_schedule_counts_its_attempts() {
        let schedule = RetrySchedule::unjittered(
            Backoff::new(Duration::from_millis(500), 2.0, Duration::from_secs(30)),
            0,
        );
        assert_eq!(schedule.next_delay(1), None);
        let schedule = RetrySchedule::unjittered(
            Backoff::new(Duration::from_millis(500), 2.0, Duration::from_secs(30)),
            3,
        );
        assert_eq!(schedule.next_delay(2), Some(Duration::from_secs(1)));
        assert_eq!(schedule.next_delay(3), None);
    }
}
