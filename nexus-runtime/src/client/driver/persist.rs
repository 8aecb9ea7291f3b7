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

use std::time::Duration;

use super::{Driver, Event, Halt, Record, shown_state};
use crate::client::durable::mirror;
use crate::codec::Content;
use crate::store::CallerRecord;

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
        self.persist(&next).await;
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
        let Some(stored) = self.stored.as_deref() else {
            return;
        };
        if stored.state.is_terminal() {
            return;
        }
        // Boxed as the driver's copy is (this future lives inside every transition's).
        let mut wanted = Box::new(stored.clone());
        mirror::apply(record, &mut wanted, self.deadlines.start_to_close);
        if mirror::same_changes(&wanted, stored) {
            return;
        }
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
                    self.stored = Some(kept(wanted));
                    return;
                }
                Ok(false) => {
                    if !self.reconcile().await {
                        return;
                    }
                    let Some(stored) = self.stored.as_deref() else {
                        return;
                    };
                    wanted.version = stored.version;
                    wanted.lease.clone_from(&stored.lease);
                    if wanted.cancel_requested_at.is_none() {
                        wanted.cancel_requested_at = stored.cancel_requested_at;
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        operation_id = %self.id,
                        operation = %self.key.operation,
                        error = %e,
                        "cannot record a transition of the operation; continuing"
                    );
                    return;
                }
            }
        }
        tracing::warn!(
            operation_id = %self.id,
            "the operation's record keeps changing; a transition was not recorded"
        );
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
            self.adopt_final(latest);
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
            stored.lease.clone_from(&latest.lease);
            if stored.cancel_requested_at.is_none() {
                stored.cancel_requested_at = latest.cancel_requested_at;
            }
        }
    }

    /// The operation finished elsewhere: shows its final record and stops.
    pub(super) fn adopt_final(&mut self, stored: CallerRecord) {
        self.record
            .send_modify(|record| mirror::adopt_final(&stored, record));
        self.pending.update(|| shown_state(&self.record));
        self.stored = Some(kept(Box::new(stored)));
        self.halt = Some(Halt::Ended);
    }
}

/// What a driver keeps of a stored record: the fields an update writes, its id, version and
/// lease. The others (the request key, the input, the options) are fixed at insert, no update
/// writes them, and the driver has them in its `Spec`: a second copy would cost a few KiB per
/// pending operation (the options are a JSON tree) and a copy at every transition.
pub(super) fn kept(mut record: Box<CallerRecord>) -> Box<CallerRecord> {
    record.endpoint = String::new();
    record.service = String::new();
    record.operation = String::new();
    record.request_id = String::new();
    record.input = Content::empty();
    record.options = serde_json::Value::Null;
    record
}
