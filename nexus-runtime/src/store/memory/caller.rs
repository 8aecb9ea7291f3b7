//! [`CallerStore`] in memory.

use std::time::{Duration, SystemTime};

use super::{CallerTimes, MemoryStore, normalize_caller};
use crate::completion::Completion;
use crate::store::time::{expiry_micros, from_micros, truncate};
use crate::store::{
    AppliedCompletion, CallerRecord, CallerStore, CancelRequestOutcome, CompletionOutcome,
    InsertOutcome, Lease, OperationId, RequestKey, StoreError, StoreFuture,
};

/// Copies what [`CallerStore::update`] may change.
fn apply_changes(stored: &mut CallerRecord, from: &CallerRecord) {
    stored.state = from.state;
    stored.attempt = from.attempt;
    stored.next_attempt_at = from.next_attempt_at;
    stored.last_failure = from.last_failure.clone();
    stored.target = from.target.clone();
    stored.token = from.token.clone();
    stored.start_links = from.start_links.clone();
    stored.result = from.result.clone();
    stored.error = from.error.clone();
    stored.completion_links = from.completion_links.clone();
    stored.cancel_requested_at = from.cancel_requested_at;
    stored.started_at = from.started_at;
    stored.closed_at = from.closed_at;
    stored.deadlines = from.deadlines.clone();
}

fn lease_until(owner: &str, now: SystemTime, lease: Duration) -> Result<Lease, StoreError> {
    Ok(Lease::new(owner, from_micros(expiry_micros(now, lease)?)?))
}

fn is_free(record: &CallerRecord, now: SystemTime) -> bool {
    !record.state.is_terminal() && record.lease.as_ref().is_none_or(|l| l.is_expired(now))
}

impl CallerStore for MemoryStore {
    fn list_operations<'a>(
        &'a self,
        query: &'a crate::store::CallerQuery,
    ) -> StoreFuture<'a, Vec<CallerRecord>> {
        self.with(|state| Ok(super::listing::caller(state, query)))
    }

    fn list_recent_operations(&self, limit: usize) -> StoreFuture<'_, Vec<CallerRecord>> {
        self.with(move |state| Ok(super::listing::recent(state, limit)))
    }

    fn insert<'a>(&'a self, record: &'a CallerRecord) -> StoreFuture<'a, InsertOutcome> {
        self.with(|state| {
            let record = normalize_caller(record)?;
            if state.caller.contains_key(&record.id) {
                return Err(StoreError::Duplicate(format!(
                    "an operation with id `{}` exists already",
                    record.id
                )));
            }
            let key = record.request_key();
            if let Some(existing) = state
                .by_request
                .get(&key)
                .and_then(|id| state.caller.get(id))
            {
                return Ok(InsertOutcome::Exists(Box::new(existing.clone())));
            }
            state.by_request.insert(key, record.id);
            state.caller.insert(record.id, record);
            Ok(InsertOutcome::Inserted)
        })
    }

    fn get(&self, id: OperationId) -> StoreFuture<'_, Option<CallerRecord>> {
        self.with(move |state| Ok(state.caller.get(&id).cloned()))
    }

    fn find_by_request_id<'a>(
        &'a self,
        key: &'a RequestKey,
    ) -> StoreFuture<'a, Option<CallerRecord>> {
        self.with(|state| {
            Ok(state
                .by_request
                .get(key)
                .and_then(|id| state.caller.get(id))
                .cloned())
        })
    }

    fn list_unfinished(&self) -> StoreFuture<'_, Vec<CallerRecord>> {
        self.with(|state| {
            let mut list: Vec<CallerRecord> = state
                .caller
                .values()
                .filter(|r| !r.state.is_terminal())
                .cloned()
                .collect();
            list.sort_by_key(|a| (a.scheduled_at, a.id));
            Ok(list)
        })
    }

    fn update<'a>(&'a self, record: &'a mut CallerRecord) -> StoreFuture<'a, bool> {
        let result = (|| {
            let times = CallerTimes::of(record)?;
            let mut state = self.lock();
            let Some(stored) = state.caller.get_mut(&record.id) else {
                return Ok(false);
            };
            if stored.version != record.version || stored.state.is_terminal() {
                return Ok(false);
            }
            // `record` becomes what is stored (its times truncated), and its changeable fields
            // are copied once; the fields fixed at insert are not copied back (they are the
            // caller's already, and the input and options are the larger part of a record).
            times.write(record);
            apply_changes(stored, record);
            stored.version += 1;
            if stored.state.is_terminal() {
                stored.lease = None;
            }
            record.version = stored.version;
            record.lease.clone_from(&stored.lease);
            Ok(true)
        })();
        Box::pin(async move { result })
    }

    fn request_cancel(
        &self,
        id: OperationId,
        at: SystemTime,
    ) -> StoreFuture<'_, CancelRequestOutcome> {
        self.with(move |state| {
            let at = truncate(at)?;
            let Some(stored) = state.caller.get_mut(&id) else {
                return Ok(CancelRequestOutcome::UnknownOperation);
            };
            Ok(if stored.state.is_terminal() {
                CancelRequestOutcome::AlreadyFinished
            } else if stored.cancel_requested_at.is_some() {
                CancelRequestOutcome::AlreadyRequested
            } else {
                stored.cancel_requested_at = Some(at);
                stored.version += 1;
                CancelRequestOutcome::Requested
            })
        })
    }

    fn record_completion<'a>(
        &'a self,
        id: OperationId,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompletionOutcome> {
        self.with(move |state| {
            let now = truncate(now)?;
            let Some(stored) = state.caller.get_mut(&id) else {
                return Ok(CompletionOutcome::UnknownOperation);
            };
            if stored.state.is_terminal() {
                return Ok(CompletionOutcome::AlreadyFinished(stored.state));
            }
            if let Some(expected) = stored.token_contradicted_by(completion) {
                let expected = expected.to_owned();
                return Ok(CompletionOutcome::TokenMismatch { expected });
            }
            stored.apply_completion(completion, now);
            stored.version += 1;
            Ok(CompletionOutcome::Applied(AppliedCompletion {
                version: stored.version,
                token: stored.token.clone(),
            }))
        })
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<CallerRecord>> {
        self.with(move |state| {
            let lease = lease_until(owner, now, lease)?;
            let mut free: Vec<&mut CallerRecord> = state
                .caller
                .values_mut()
                .filter(|r| is_free(r, now))
                .collect();
            free.sort_by_key(|a| (a.scheduled_at, a.id));
            Ok(free
                .into_iter()
                .take(limit)
                .map(|r| {
                    r.lease = Some(lease.clone());
                    r.version += 1;
                    r.clone()
                })
                .collect())
        })
    }

    fn renew<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<OperationId>> {
        self.with(move |state| {
            let until = from_micros(expiry_micros(now, lease)?)?;
            let mut ids = Vec::new();
            for r in state.caller.values_mut() {
                if r.state.is_terminal() {
                    continue;
                }
                if let Some(held) = r.lease.as_mut().filter(|l| l.owner == owner) {
                    held.expires_at = held.expires_at.max(until);
                    ids.push(r.id);
                }
            }
            ids.sort();
            Ok(ids)
        })
    }

    fn release<'a>(&'a self, owner: &'a str, ids: &'a [OperationId]) -> StoreFuture<'a, u64> {
        self.with(move |state| {
            let mut released = 0;
            for id in ids {
                if let Some(r) = state.caller.get_mut(id)
                    && r.lease.as_ref().is_some_and(|l| l.owner == owner)
                {
                    r.lease = None;
                    released += 1;
                }
            }
            Ok(released)
        })
    }

    fn release_all<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, u64> {
        self.with(move |state| {
            let mut released = 0;
            for r in state.caller.values_mut() {
                if r.lease.as_ref().is_some_and(|l| l.owner == owner) {
                    r.lease = None;
                    released += 1;
                }
            }
            Ok(released)
        })
    }

    fn purge_finished(&self, closed_before: SystemTime) -> StoreFuture<'_, u64> {
        self.with(move |state| {
            let doomed: Vec<CallerRecord> = state
                .caller
                .values()
                .filter(|r| r.state.is_terminal() && r.closed_at.is_some_and(|t| t < closed_before))
                .cloned()
                .collect();
            for r in &doomed {
                state.caller.remove(&r.id);
                state.by_request.remove(&r.request_key());
            }
            Ok(doomed.len() as u64)
        })
    }
}
