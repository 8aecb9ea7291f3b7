//! Timeouts and the deadlines they give one operation.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::TimeoutKind;

/// The default per-attempt timeout, as Temporal's (`component.nexusoperations.request.timeout`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeouts of an operation, set per endpoint and overridden per call.
///
/// | timeout | bounds | default |
/// |---|---|---|
/// | schedule-to-close | the whole operation, from scheduling to its result | none |
/// | schedule-to-start | from scheduling until it started (token) or returned its sync result | none |
/// | start-to-close | an async operation, from its start to its result | none |
/// | request | one attempt (one start or cancel request), sent as `Request-Timeout` | 10 s |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// The whole operation.
    pub schedule_to_close: Option<Duration>,
    /// Until started (or completed synchronously).
    pub schedule_to_start: Option<Duration>,
    /// From start to completion (async operations).
    pub start_to_close: Option<Duration>,
    /// One attempt.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            schedule_to_close: None,
            schedule_to_start: None,
            start_to_close: None,
            request: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The deadlines of one operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    /// Schedule-to-close, already lowered to the enclosing handler's deadline.
    pub schedule_to_close: Option<Instant>,
    pub schedule_to_start: Option<Instant>,
    pub start_to_close: Option<Duration>,
    /// When the operation started, once it has.
    pub started: Option<Instant>,
    /// The per-attempt timeout.
    pub request: Duration,
}

impl Deadlines {
    /// The deadlines of an operation scheduled at `scheduled`, inside a scope whose deadline is
    /// `inherited` (a call made by a handler).
    pub fn new(timeouts: &Timeouts, scheduled: Instant, inherited: Option<Instant>) -> Self {
        let own = timeouts.schedule_to_close.map(|t| scheduled + t);
        Self {
            schedule_to_close: min(own, inherited),
            schedule_to_start: timeouts.schedule_to_start.map(|t| scheduled + t),
            start_to_close: timeouts.start_to_close,
            started: None,
            request: timeouts.request,
        }
    }

    /// The deadline that expires first now, and which timeout it is. On a tie schedule-to-close
    /// wins: it caps the others, as in Temporal.
    pub fn next(&self) -> Option<(Instant, TimeoutKind)> {
        let mut best = self
            .schedule_to_close
            .map(|d| (d, TimeoutKind::ScheduleToClose));
        let mut consider = |candidate: Option<Instant>, kind| {
            if let Some(d) = candidate
                && best.is_none_or(|(b, _)| d < b)
            {
                best = Some((d, kind));
            }
        };
        match self.started {
            None => consider(self.schedule_to_start, TimeoutKind::ScheduleToStart),
            Some(started) => consider(
                self.start_to_close.map(|t| started + t),
                TimeoutKind::StartToClose,
            ),
        }
        best
    }

    /// When the handler's operation must be done if it starts at `now` (`Operation-Timeout`).
    pub fn operation_deadline(&self, now: Instant) -> Option<Instant> {
        min(self.schedule_to_close, self.start_to_close.map(|t| now + t))
    }
}

pub(crate) fn min(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_earliest_deadline_names_its_timeout() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let timeouts = Timeouts {
            schedule_to_close: Some(s(100)),
            schedule_to_start: Some(s(10)),
            start_to_close: Some(s(30)),
            request: s(10),
        };
        let mut d = Deadlines::new(&timeouts, now, None);
        assert_eq!(d.next(), Some((now + s(10), TimeoutKind::ScheduleToStart)));
        d.started = Some(now + s(5));
        assert_eq!(d.next(), Some((now + s(35), TimeoutKind::StartToClose)));
        d.started = Some(now + s(90));
        assert_eq!(d.next(), Some((now + s(100), TimeoutKind::ScheduleToClose)));
        // The enclosing handler's deadline lowers schedule-to-close.
        let inner = Deadlines::new(&timeouts, now, Some(now + s(3)));
        assert_eq!(
            inner.next(),
            Some((now + s(3), TimeoutKind::ScheduleToClose))
        );
        assert_eq!(inner.operation_deadline(now), Some(now + s(3)));
        assert_eq!(Deadlines::new(&Timeouts::default(), now, None).next(), None);
    }
}
