//! The persistence seam: every transition is written to the caller's store before handles see it.
//!
//! Writes are compare-and-sets on the record's version. When one is lost, something else changed
//! the operation, and the driver reads it again ([`Driver::reconcile`]):
//! - it finished (a receiver recorded its completion): the driver shows that final record and
//!   stops;
//! - another replica claimed it: the driver stops (its task then follows the record);
//! - a cancel request was recorded (from a handle in another process): the driver carries it out;
//! - this client claimed it again (its own lease had lapsed): nothing to do but write again.
//!
//! A store that fails is logged and the transition shown anyway: the next transition writes the
//! state again, and a restart resumes from the last state written (so an attempt may be repeated,
//! with the same request id).

use std::time::{Duration, SystemTime};

use super::{Driver, Event, Halt, Record, shown_state};
use crate::client::durable::mirror::{self, Ended};
use crate::codec::Content;
use crate::store::{self, CallerRecord, Lease, OperationDeadlines, OperationId, RequestKey};

/// How many lost compare-and-sets in a row one transition tolerates before giving up writing it.
const MAX_CONFLICTS: usize = 8;

/// Store calls that fail with a retryable error are tried this many times in all.
const STORE_TRIES: u32 = 3;

/// Pause before trying a failed store call again (doubled each time).
const STORE_RETRY_DELAY: Duration = Duration::from_millis(50);

impl Driver {
    /// Applies a transition: records it in the store, then shows it to the handles. After a halt
    /// nothing changes any more.
    ///
    /// With no handle subscribed (an awaited call has none) the new record is stored without
    /// showing a change or waking anyone. The count is read under the record cell's lock: a
    /// handle subscribing at the same moment either counts already, or reads the record after
    /// this write.
    pub(super) async fn publish(&mut self, change: impl FnOnce(&mut Record)) {
        if self.halt.is_some() {
            return;
        }
        if self.stored.is_none() {
            // Nothing is recorded (a client that keeps nothing, see `Durability::keeps_nothing`):
            // the change is made in place.
            let record = &self.record;
            record.send_if_modified(|shown| {
                change(shown);
                record.receiver_count() > 0
            });
            self.pending.update(|| shown_state(&self.record));
            return;
        }
        // Boxed: the store's writes (retries, reconciling) would otherwise size every
        // transition's future, and with it the driver's, also for a client that records nothing.
        Box::pin(self.persist_shown(change)).await;
    }

    /// Records the changed record in the store, then shows it to the handles (unless the driver
    /// halted).
    async fn persist_shown(&mut self, change: impl FnOnce(&mut Record)) {
        let mut next = self.record.borrow().clone();
        change(&mut next);
        // The store holds the record shown before this change, written over what the driver
        // keeps (unless a write was missed since): a change its written view does not see
        // changes nothing there.
        let unchanged = self.stored.as_deref().is_some_and(|kept| !kept.behind)
            && mirror::Written::of(&self.record.borrow()) == mirror::Written::of(&next);
        if !unchanged {
            self.persist(&next).await;
        }
        if self.halt.is_none() {
            let record = &self.record;
            record.send_if_modified(|shown| {
                *shown = next;
                record.receiver_count() > 0
            });
            self.pending.update(|| shown_state(&self.record));
        }
    }

    /// Writes `record` to the store, unless the operation is already recorded as finished (a
    /// finished record never changes: a cancel request still in flight after `TryCancel` is only
    /// shown, not stored).
    async fn persist(&mut self, record: &Record) {
        let Some(kept) = self.stored.as_deref() else {
            return;
        };
        if kept.state.is_terminal() {
            return;
        }
        let mut wanted = Box::new(kept.written(self.id, record, self.deadlines.start_to_close));
        let store = self.client.durability().store.clone();
        for _ in 0..MAX_CONFLICTS {
            let mut tries = 0;
            let written = loop {
                tries += 1;
                match store.update(&mut wanted).await {
                    Err(e) if e.is_retryable() && tries < STORE_TRIES => {
                        tokio::time::sleep(STORE_RETRY_DELAY * 2u32.pow(tries - 1)).await;
                    }
                    other => break other,
                }
            };
            match written {
                Ok(true) => {
                    self.stored = Some(Kept::of(&wanted));
                    return;
                }
                Ok(false) => {
                    if !self.reconcile().await {
                        return;
                    }
                    let Some(kept) = self.stored.as_deref() else {
                        return;
                    };
                    wanted.version = kept.version;
                    wanted.lease = kept.lease.as_deref().cloned();
                    if wanted.cancel_requested_at.is_none() {
                        wanted.cancel_requested_at = kept.cancel_requested_at.get();
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        operation_id = %self.id,
                        operation = %self.key.operation,
                        error = %e,
                        "cannot record a transition of the operation; continuing"
                    );
                    self.fell_behind();
                    return;
                }
            }
        }
        tracing::warn!(
            operation_id = %self.id,
            "the operation's record keeps changing; a transition was not recorded"
        );
        self.fell_behind();
    }

    /// A transition is shown but not stored: the next one is written whatever it changes.
    fn fell_behind(&mut self) {
        if let Some(kept) = self.stored.as_mut() {
            kept.behind = true;
        }
    }

    /// Reads the record again and acts on what changed. Returns whether this driver may go on
    /// writing it.
    pub(super) async fn reconcile(&mut self) -> bool {
        if self.halt.is_some() {
            return false;
        }
        if self.stored.is_none() {
            // Nothing recorded to read (completions reach the driver through its queue).
            return true;
        }
        let latest = match self.client.durability().store.get(self.id).await {
            Ok(Some(latest)) => latest,
            Ok(None) => {
                tracing::warn!(operation_id = %self.id, "the operation's record is gone");
                self.halt = Some(Halt::Gone);
                return false;
            }
            Err(e) => {
                tracing::warn!(operation_id = %self.id, error = %e, "cannot read the operation");
                return false;
            }
        };
        if latest.state.is_terminal() {
            self.adopt_final(Ended::of_record(&latest));
            return false;
        }
        let durability = self.client.durability();
        if durability.replicas.is_some()
            && latest
                .lease
                .as_ref()
                .is_some_and(|l| l.owner != durability.owner)
        {
            tracing::info!(
                operation_id = %self.id,
                owner = latest.lease.as_ref().map(|l| l.owner.as_str()),
                "another replica took the operation over"
            );
            self.halt = Some(Halt::TakenOver);
            return false;
        }
        if latest.cancel_requested()
            && !self.cancel_requested
            && !self
                .backlog
                .as_ref()
                .is_some_and(|b| b.queued.iter().any(|e| matches!(e, Event::Cancel(_))))
            && self
                .stored
                .as_ref()
                .is_none_or(|s| s.cancel_requested_at.is_none())
        {
            tracing::debug!(operation_id = %self.id, "a cancel request was recorded elsewhere");
            self.backlog().queued.push_back(Event::Cancel(None));
        }
        self.refresh(&latest);
        true
    }

    /// Takes the version, lease and cancel request of a record read from the store.
    pub(super) fn refresh(&mut self, latest: &CallerRecord) {
        let Some(stored) = self.stored.as_mut() else {
            return;
        };
        if latest.version > stored.version {
            stored.version = latest.version;
            stored.lease = latest.lease.clone().map(Box::new);
            if stored.cancel_requested_at.is_none() {
                stored.cancel_requested_at = At::of(latest.cancel_requested_at);
            }
        }
    }

    /// The operation ended (its completion recorded, or its record found finished): shows its
    /// end and stops.
    pub(super) fn adopt_final(&mut self, end: Ended) {
        if let Some(kept) = self.stored.as_mut() {
            kept.end(&end);
        }
        self.record
            .send_modify(|record| mirror::adopt_final(end, record));
        self.pending.update(|| shown_state(&self.record));
        self.halt = Some(Halt::Ended);
    }
}

/// What a driver keeps of its stored record, boxed: the version and lease an update compares,
/// the times it writes once (or carries over: the deadlines), and the state it was left in. The
/// rest of what an update writes (attempt, next attempt, failures, target, token, links, outcome)
/// is what the record shown to handles says, and is taken from there when a transition is
/// written ([`Kept::written`]); the request key, input, options, schedule time and callback
/// secret are fixed at insert and no update writes them. A whole copy of the record would cost
/// more than a fifth of a pending operation's memory, and a copy at every transition.
#[derive(Debug)]
pub(crate) struct Kept {
    pub version: u64,
    /// Boxed: only with replicas.
    pub lease: Option<Box<Lease>>,
    pub state: store::OperationState,
    /// A transition was shown but not stored (the store failed, or the record kept changing):
    /// what the store holds is not what the shown record says, so the next transition is
    /// written whatever it changes.
    pub behind: bool,
    pub cancel_requested_at: At,
    started_at: At,
    closed_at: At,
    schedule_to_close: At,
    schedule_to_start: At,
    start_to_close: At,
}

impl Kept {
    /// What a driver keeps of `record`, as the store holds it.
    pub fn of(record: &CallerRecord) -> Box<Self> {
        let deadlines = &record.deadlines;
        Box::new(Self {
            version: record.version,
            lease: record.lease.clone().map(Box::new),
            state: record.state,
            behind: false,
            cancel_requested_at: At::of(record.cancel_requested_at),
            started_at: At::of(record.started_at),
            closed_at: At::of(record.closed_at),
            schedule_to_close: At::of(deadlines.schedule_to_close),
            schedule_to_start: At::of(deadlines.schedule_to_start),
            start_to_close: At::of(deadlines.start_to_close),
        })
    }

    /// The record as it is stored once it `end`ed: finished, released, never written again.
    fn end(&mut self, end: &Ended) {
        self.version = end.version;
        self.lease = None;
        self.state = end.state;
        self.behind = false;
        self.closed_at = At::of(end.closed_at);
    }

    /// The stored record of operation `id` once `shown` is written over it: what an update of
    /// the store is given (the fields fixed at insert left empty: the request key, input,
    /// options and callback secret, and the epoch for the schedule time).
    pub fn written(
        &self,
        id: OperationId,
        shown: &Record,
        start_to_close: Option<Duration>,
    ) -> CallerRecord {
        let mut record = CallerRecord::new(
            id,
            RequestKey::empty(),
            Content::empty(),
            serde_json::Value::Null,
            SystemTime::UNIX_EPOCH,
        );
        record.version = self.version;
        record.lease = self.lease.as_deref().cloned();
        record.state = self.state;
        record.cancel_requested_at = self.cancel_requested_at.get();
        record.started_at = self.started_at.get();
        record.closed_at = self.closed_at.get();
        record.deadlines = OperationDeadlines {
            schedule_to_close: self.schedule_to_close.get(),
            schedule_to_start: self.schedule_to_start.get(),
            start_to_close: self.start_to_close.get(),
        };
        mirror::apply(shown, &mut record, start_to_close);
        record
    }
}

/// A time as the stores keep it, in 8 bytes: whole microseconds since the epoch, `None` as
/// `i64::MIN`. (A time no store can hold, beyond about 292,000 years from the epoch, is kept
/// as `None`: no store could have written it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct At(i64);

impl At {
    const NONE: Self = Self(i64::MIN);

    fn of(at: Option<SystemTime>) -> Self {
        at.and_then(|at| store::time::to_micros(at).ok())
            .filter(|&micros| micros != i64::MIN)
            .map_or(Self::NONE, Self)
    }

    /// The time, truncated to the microsecond as the stores keep it.
    pub fn get(self) -> Option<SystemTime> {
        (self != Self::NONE)
            .then(|| store::time::from_micros(self.0).ok())
            .flatten()
    }

    pub fn is_none(self) -> bool {
        self == Self::NONE
    }

    pub fn is_some(self) -> bool {
        !self.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::info::OperationState;
    use crate::clock;
    use crate::link::Link;

    fn started() -> CallerRecord {
        let mut stored = mirror::tests::stored();
        stored.input = Content::new("application/json", b"1".to_vec());
        stored.options = serde_json::json!({"headers": {}});
        stored.state = store::OperationState::Started;
        stored.version = 4;
        stored.attempt = 2;
        stored.target = Some("0".into());
        stored.token = Some("tok".into());
        stored.start_links = vec![Link::new("https://handler.example/1", "h.Run")];
        // As the stores keep times: to the microsecond.
        let now = store::time::truncate(clock::now()).unwrap();
        stored.started_at = Some(now);
        stored.deadlines.schedule_to_close = Some(now + Duration::from_secs(60));
        stored.lease = Some(Lease::new("me", clock::now()));
        stored
    }

    /// What the driver keeps, with the record it shows, gives back every field an update
    /// writes: a transition that changes nothing is not written, and one that changes something
    /// writes the rest as it was.
    #[tokio::test(start_paused = true)]
    async fn the_kept_fields_and_the_shown_record_give_back_what_an_update_writes() {
        let stored = started();
        let kept = Kept::of(&stored);
        let shown = mirror::record_of(&stored);
        let written = kept.written(stored.id, &shown, None);
        assert!(mirror::same_changes(&written, &stored), "{written:#?}");
        assert_eq!(written.version, stored.version);
        assert_eq!(written.lease, stored.lease);

        let mut next = shown.clone();
        next.info.state = OperationState::Succeeded;
        next.outcome = Some(Box::new(Ok(Content::new(
            "application/json",
            b"2".to_vec(),
        ))));
        let written = kept.written(stored.id, &next, None);
        assert!(!mirror::same_changes(&written, &stored));
        assert_eq!(written.state, store::OperationState::Succeeded);
        assert_eq!(written.token, stored.token);
        assert_eq!(written.start_links, stored.start_links);
        assert_eq!(written.started_at, stored.started_at, "written once, kept");
        assert!(written.result.is_some());
    }

    /// A kept time is the stored one to the microsecond, before the epoch as after it, and
    /// `None` stays `None`.
    #[test]
    fn a_kept_time_is_the_stored_time() {
        assert_eq!(At::of(None).get(), None);
        assert!(At::of(None).is_none());
        let at = store::time::truncate(clock::now()).unwrap();
        assert_eq!(At::of(Some(at)).get(), Some(at));
        let before = SystemTime::UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(At::of(Some(before)).get(), Some(before));
        let nanos = at + Duration::from_nanos(999);
        assert_eq!(
            At::of(Some(nanos)).get(),
            Some(at),
            "truncated as the stores do"
        );
        assert_eq!(std::mem::size_of::<At>(), 8);
    }

    /// A transition is written when it changes what `mirror::apply` reads of the shown record,
    /// and only then: one that changes nothing the store keeps (a cancel request's progress)
    /// leaves the written view, and so the record written, as they were.
    #[tokio::test(start_paused = true)]
    async fn a_transition_is_written_when_its_written_view_changes() {
        use crate::client::info::{CancelState, CancellationInfo};
        use mirror::Written;

        let stored = started();
        let kept = Kept::of(&stored);
        let mut shown = mirror::record_of(&stored);
        let mut cancel = CancellationInfo::new(tokio::time::Instant::now(), CancelState::Scheduled);
        shown.info.cancellation = Some(Box::new(cancel.clone()));

        let mut next = shown.clone();
        cancel.state = CancelState::Blocked;
        cancel.blocked_reason = Some("breaker open".into());
        cancel.attempt = 3;
        next.info.cancellation = Some(Box::new(cancel));
        next.info.blocked_reason = Some("limit".into());
        assert!(Written::of(&next) == Written::of(&shown));
        assert!(mirror::same_changes(
            &kept.written(stored.id, &next, None),
            &kept.written(stored.id, &shown, None)
        ));

        let changes: [fn(&mut Record); 6] = [
            |r| r.info.attempt += 1,
            |r| r.info.token = Some("other".into()),
            |r| r.info.next_attempt_at = Some(tokio::time::Instant::now()),
            |r| r.info.completion_links = vec![Link::new("https://handler.example/2", "h.Done")],
            |r| r.info.last_failure = Some(Box::new(crate::CallError::Canceled)),
            |r| r.outcome = Some(Box::new(Err(crate::CallError::Canceled))),
        ];
        for change in changes {
            let mut next = shown.clone();
            change(&mut next);
            assert!(Written::of(&next) != Written::of(&shown));
            assert!(!mirror::same_changes(
                &kept.written(stored.id, &next, None),
                &kept.written(stored.id, &shown, None)
            ));
        }
    }
}
