//! Between what handles observe (the driver's [`Record`]) and what the store keeps
//! ([`CallerRecord`]).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::client::driver::{Outcome, Record};
use crate::client::info::{CancelState, CancellationInfo, OperationInfo, OperationState};
use crate::clock;
use crate::codec::Content;
use crate::completion::Completion;
use crate::error::{CallError, TimeoutKind};
use crate::link::Link;
use crate::machinery::BREAKER_OPEN_REASON;
use crate::store::{self, AppliedCompletion, CallerRecord};

/// The tokio instant of a wall-clock time, in the past as well as in the future.
pub(crate) fn instant_of(at: SystemTime) -> Instant {
    let now = clock::now();
    match at.duration_since(now) {
        Ok(ahead) => Instant::now() + ahead,
        Err(e) => Instant::now()
            .checked_sub(e.duration())
            .unwrap_or_else(Instant::now),
    }
}

/// What [`apply`] reads of a shown record, and nothing else: two records with the same view are
/// written alike, so a transition that leaves it as it was needs no write. The fields are
/// compared in this order, the cheapest first.
#[derive(PartialEq)]
pub(crate) struct Written<'a> {
    state: OperationState,
    attempt: u32,
    target: Option<usize>,
    next_attempt_at: Option<Instant>,
    started_at: Option<Instant>,
    closed_at: Option<Instant>,
    cancel_requested_at: Option<Instant>,
    token: &'a Option<String>,
    last_failure: Option<&'a CallError>,
    start_links: &'a Vec<Link>,
    completion_links: &'a Vec<Link>,
    outcome: Option<&'a Outcome>,
}

impl<'a> Written<'a> {
    /// The view of `record` that [`apply`] writes.
    pub(crate) fn of(record: &'a Record) -> Self {
        let info = &record.info;
        Self {
            state: info.state,
            attempt: info.attempt,
            target: info.target,
            next_attempt_at: info.next_attempt_at,
            started_at: info.started_at,
            closed_at: info.closed_at,
            cancel_requested_at: info.cancellation.as_ref().map(|c| c.requested_at),
            token: &info.token,
            last_failure: info.last_failure.as_deref(),
            start_links: &info.start_links,
            completion_links: &info.completion_links,
            outcome: record.outcome.as_deref(),
        }
    }
}

/// Writes the transition `record` shows into `stored`: every field the store lets
/// [`CallerStore::update`](crate::store::CallerStore::update) change. Times fixed once (started,
/// closed, cancel requested, the start-to-close deadline) are written once. It reads `record`
/// through its [`Written`] view only.
pub(crate) fn apply(record: &Record, stored: &mut CallerRecord, start_to_close: Option<Duration>) {
    let Written {
        state,
        attempt,
        target,
        next_attempt_at,
        started_at,
        closed_at,
        cancel_requested_at,
        token,
        last_failure,
        start_links,
        completion_links,
        outcome,
    } = Written::of(record);
    stored.state = state;
    stored.attempt = attempt;
    stored.next_attempt_at = next_attempt_at.map(clock::system_at);
    stored.last_failure = last_failure.map(|e| Box::new(e.to_failure()));
    stored.target = target.map(|t| t.to_string());
    stored.token.clone_from(token);
    stored.start_links.clone_from(start_links);
    stored.completion_links.clone_from(completion_links);
    if stored.started_at.is_none() {
        stored.started_at = started_at.map(clock::system_at);
    }
    if stored.closed_at.is_none() {
        stored.closed_at = closed_at.map(clock::system_at);
    }
    if stored.cancel_requested_at.is_none() {
        stored.cancel_requested_at = cancel_requested_at.map(clock::system_at);
    }
    if stored.deadlines.start_to_close.is_none()
        && stored.state == store::OperationState::Started
        && let (Some(started), Some(timeout)) = (stored.started_at, start_to_close)
    {
        stored.deadlines.start_to_close = started.checked_add(timeout);
    }
    match outcome {
        Some(Ok(content)) => {
            stored.result = Some(content.clone());
            stored.error = None;
        }
        Some(Err(error)) => {
            stored.result = None;
            stored.error = Some(Box::new(error.to_failure()));
        }
        None => {}
    }
}

/// Whether `a` and `b` agree on every field [`apply`] writes (what the tests of the driver's
/// writes compare).
#[cfg(test)]
pub(crate) fn same_changes(a: &CallerRecord, b: &CallerRecord) -> bool {
    a.state == b.state
        && a.attempt == b.attempt
        && a.next_attempt_at == b.next_attempt_at
        && a.started_at == b.started_at
        && a.closed_at == b.closed_at
        && a.cancel_requested_at == b.cancel_requested_at
        && a.deadlines == b.deadlines
        && a.target == b.target
        && a.token == b.token
        && a.last_failure == b.last_failure
        && a.result == b.result
        && a.error == b.error
        && a.start_links == b.start_links
        && a.completion_links == b.completion_links
}

/// The outcome of a finished record.
pub(crate) fn outcome_of(stored: &CallerRecord) -> Outcome {
    if stored.state == store::OperationState::Succeeded {
        return Ok(stored.result.clone().unwrap_or_else(Content::empty));
    }
    Err(match &stored.error {
        Some(failure) => CallError::from_failure(failure),
        None => match stored.state {
            store::OperationState::Canceled => CallError::Canceled,
            store::OperationState::TimedOut => CallError::Timeout {
                kind: TimeoutKind::ScheduleToClose,
                last_failure: None,
            },
            state => CallError::Invalid(format!(
                "the operation is recorded as {state} without its error"
            )),
        },
    })
}

/// What handles see of a stored operation (the cancel request's progress is not stored: a
/// requested cancellation shows as `Scheduled`, or `OperationEnded` once the operation ended).
pub(crate) fn record_of(stored: &CallerRecord) -> Record {
    let info = OperationInfo {
        state: stored.state,
        blocked_reason: (stored.state == OperationState::Blocked)
            .then(|| BREAKER_OPEN_REASON.to_owned()),
        attempt: stored.attempt,
        last_failure: stored
            .last_failure
            .as_ref()
            .map(|f| Box::new(CallError::from_failure(f))),
        next_attempt_at: stored.next_attempt_at.map(instant_of),
        token: stored.token.clone(),
        target: stored.target.as_deref().and_then(|t| t.parse().ok()),
        scheduled_at: instant_of(stored.scheduled_at),
        started_at: stored.started_at.map(instant_of),
        closed_at: stored.closed_at.map(instant_of),
        cancellation: stored.cancel_requested_at.map(|at| {
            let state = if stored.state.is_terminal() {
                CancelState::OperationEnded
            } else {
                CancelState::Scheduled
            };
            Box::new(CancellationInfo::new(instant_of(at), state))
        }),
        start_links: stored.start_links.clone(),
        completion_links: stored.completion_links.clone(),
    };
    Record {
        id: stored.id,
        info,
        outcome: stored
            .state
            .is_terminal()
            .then(|| Box::new(outcome_of(stored))),
    }
}

/// How an operation ended, as its record now says: what wakes its task once its completion is
/// recorded, or what a finished record read from the store says. Only the end: the rest of the
/// record (attempts, start, links of the start) is as the task knows it.
#[derive(Debug)]
pub(crate) struct Ended {
    pub state: store::OperationState,
    pub outcome: Outcome,
    /// The token the record holds.
    pub token: Option<String>,
    pub completion_links: Vec<Link>,
    pub closed_at: Option<SystemTime>,
    /// The record's version with its end (what a driver keeping the record takes).
    pub version: u64,
}

impl Ended {
    /// The end `completion` made, recorded at `closed_at`, with what the store `applied`.
    pub fn of_completion(
        completion: &Completion,
        applied: AppliedCompletion,
        closed_at: SystemTime,
    ) -> Self {
        Self {
            state: completion.final_state(),
            // As a record holding the completion says it (`outcome_of`): the error by its
            // Failure.
            outcome: match &completion.outcome {
                Ok(content) => Ok(content.clone()),
                Err(error) => Err(CallError::from_failure(&error.to_failure())),
            },
            token: applied.token,
            completion_links: completion.links.clone(),
            closed_at: Some(closed_at),
            version: applied.version,
        }
    }

    /// The end the finished record `stored` says.
    pub fn of_record(stored: &CallerRecord) -> Self {
        Self {
            state: stored.state,
            outcome: outcome_of(stored),
            token: stored.token.clone(),
            completion_links: stored.completion_links.clone(),
            closed_at: stored.closed_at,
            version: stored.version,
        }
    }
}

/// Shows the operation's `end` in `record`, keeping an outcome the driver already gave (a
/// caller's cancellation that ended the wait before the operation itself ended).
pub(crate) fn adopt_final(end: Ended, record: &mut Record) {
    if record.outcome.is_none() {
        record.outcome = Some(Box::new(end.outcome));
        record.info.set_state(end.state);
        record.info.closed_at = end.closed_at.map(instant_of).or(Some(Instant::now()));
    }
    // The completion may have overtaken a cancel request: nothing more will be sent.
    if let Some(cancellation) = record.info.cancellation.as_mut() {
        cancellation.end_with_operation();
    }
    record.info.next_attempt_at = None;
    if record.info.token.is_none() {
        record.info.token = end.token;
    }
    if record.info.completion_links.is_empty() {
        record.info.completion_links = end.completion_links;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::OperationError;
    use crate::store::RequestKey;

    /// A new operation's record, as the store holds it (also for the driver's tests).
    pub(crate) fn stored() -> CallerRecord {
        CallerRecord::new(
            uuid::Uuid::new_v4(),
            RequestKey {
                endpoint: "e".into(),
                service: "s".into(),
                operation: "o".into(),
                request_id: "r".into(),
            },
            Content::empty(),
            serde_json::Value::Null,
            clock::now(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_transition_round_trips_through_the_store_fields() {
        let mut s = stored();
        let mut record = record_of(&s);
        record.info.state = OperationState::BackingOff;
        record.info.attempt = 3;
        record.info.next_attempt_at = Some(Instant::now() + Duration::from_secs(4));
        record.info.last_failure = Some(Box::new(CallError::Handler(
            crate::HandlerError::unavailable("down"),
        )));
        apply(&record, &mut s, None);
        assert_eq!(s.state, store::OperationState::BackingOff);
        assert_eq!(s.attempt, 3);
        let back = record_of(&s);
        assert_eq!(back.info.state, OperationState::BackingOff);
        assert_eq!(back.info.last_failure, record.info.last_failure);
        let next = back.info.next_attempt_at.expect("next attempt");
        assert!(next - Instant::now() <= Duration::from_secs(4));
        assert!(next - Instant::now() > Duration::from_millis(3999));
        assert!(back.outcome.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_record_shows_the_breaker_as_its_reason() {
        let mut s = stored();
        let mut record = record_of(&s);
        assert_eq!(record.info.blocked_reason, None);
        record.info.block(BREAKER_OPEN_REASON, None);
        apply(&record, &mut s, None);
        assert_eq!(s.state, OperationState::Blocked);
        let back = record_of(&s);
        assert_eq!(back.info.state, OperationState::Blocked);
        assert_eq!(
            back.info.blocked_reason.as_deref(),
            Some(BREAKER_OPEN_REASON)
        );
        record.info.set_state(OperationState::Scheduled);
        assert_eq!(record.info.blocked_reason, None);
    }

    #[tokio::test(start_paused = true)]
    async fn started_sets_the_start_to_close_deadline_once() {
        let mut s = stored();
        let mut record = record_of(&s);
        record.info.state = OperationState::Started;
        record.info.started_at = Some(Instant::now());
        record.info.token = Some("t".into());
        apply(&record, &mut s, Some(Duration::from_secs(30)));
        let deadline = s.deadlines.start_to_close.expect("deadline");
        assert_eq!(
            deadline
                .duration_since(s.started_at.expect("started"))
                .expect("after the start"),
            Duration::from_secs(30)
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        apply(&record, &mut s, Some(Duration::from_secs(30)));
        assert_eq!(s.deadlines.start_to_close, Some(deadline));
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_record_gives_its_outcome() {
        let mut s = stored();
        let mut record = record_of(&s);
        let error = CallError::Operation(OperationError::failed("no"));
        record.outcome = Some(Box::new(Err(error.clone())));
        record.info.state = OperationState::Failed;
        record.info.closed_at = Some(Instant::now());
        apply(&record, &mut s, None);
        assert_eq!(outcome_of(&s), Err(error));
        let mut fresh = record_of(&stored());
        adopt_final(Ended::of_record(&s), &mut fresh);
        assert_eq!(fresh.info.state, OperationState::Failed);
        assert!(fresh.outcome.is_some());
    }

    /// A recorded completion ends the shown record as the record holding it, read back whole,
    /// would: the outcome, state, token, links and close time.
    #[tokio::test(start_paused = true)]
    async fn a_recorded_completion_ends_as_its_record_says() {
        use crate::link::Link;
        let links = vec![Link::new("https://example.test/run/1", "run")];
        let now = clock::now();
        for outcome in [
            Ok(Content::new("application/json", b"7".to_vec())),
            Err(OperationError::failed("no")),
            Err(OperationError::canceled("stop")),
        ] {
            let completion = Completion {
                token: "tok-1".into(),
                outcome,
                links: links.clone(),
                start_time: None,
                close_time: None,
            };
            let mut s = stored();
            s.apply_completion(&completion, now);
            s.version = 4;
            let applied = AppliedCompletion {
                version: 4,
                token: Some("tok-1".into()),
            };
            let (mut by_completion, mut by_record) = (record_of(&stored()), record_of(&stored()));
            adopt_final(
                Ended::of_completion(&completion, applied, now),
                &mut by_completion,
            );
            adopt_final(Ended::of_record(&s), &mut by_record);
            assert_eq!(by_completion.outcome, by_record.outcome);
            assert_eq!(by_completion.info.state, s.state);
            assert_eq!(by_completion.info.token.as_deref(), Some("tok-1"));
            assert_eq!(by_completion.info.completion_links, links);
            assert_eq!(by_completion.info.closed_at, by_record.info.closed_at);
        }
    }
}
