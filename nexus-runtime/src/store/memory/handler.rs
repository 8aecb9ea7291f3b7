//! [`HandlerStore`] in memory.

use std::time::{Duration, SystemTime};

use super::{MemoryStore, StartRow, State, normalize_async};
use crate::completion::Completion;
use crate::store::handler::check_answer;
use crate::store::time::{expiry_micros, from_micros, truncate, truncate_opt};
use crate::store::{
    AsyncOperationRecord, AsyncState, BeginStart, CancelRequestOutcome, CompleteAsync, Delivery,
    DeliveryState, HandlerPurge, HandlerStore, Lease, RetargetAsync, StartAnswer, StartClaim,
    StartKey, StoreError, StoreFuture, StoredCallback,
};

fn normalize_completion(completion: &Completion) -> Result<Completion, StoreError> {
    let mut c = completion.clone();
    c.start_time = truncate_opt(c.start_time)?;
    c.close_time = truncate_opt(c.close_time)?;
    Ok(c)
}

/// The tokens of the running operations `owner` holds a lease on that `also` accepts, sorted.
fn owner_tokens(
    state: &State,
    owner: &str,
    also: impl Fn(&AsyncOperationRecord) -> bool,
) -> Vec<String> {
    let mut tokens: Vec<String> = state
        .operations
        .values()
        .filter(|op| {
            !op.state.is_terminal()
                && op.lease.as_ref().is_some_and(|l| l.owner == owner)
                && also(op)
        })
        .map(|op| op.token.clone())
        .collect();
    tokens.sort();
    tokens
}

impl HandlerStore for MemoryStore {
    fn list_async<'a>(
        &'a self,
        query: &'a crate::store::AsyncQuery,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        self.with(|state| Ok(super::listing::async_ops(state, query)))
    }

    fn begin_start<'a>(
        &'a self,
        key: &'a StartKey,
        now: SystemTime,
        claim_until: SystemTime,
    ) -> StoreFuture<'a, BeginStart> {
        self.with(move |state| {
            let claim = StartClaim {
                id: uuid::Uuid::new_v4(),
                expires_at: truncate(claim_until)?,
            };
            match state.starts.get_mut(key) {
                None => {
                    state.starts.insert(
                        key.clone(),
                        StartRow {
                            claim: Some(claim.clone()),
                            answer: None,
                            answered_at: None,
                        },
                    );
                    Ok(BeginStart::Claimed(claim))
                }
                Some(StartRow {
                    answer: Some(answer),
                    ..
                }) => Ok(BeginStart::Answered(answer.clone())),
                Some(row) => match &row.claim {
                    Some(held) if held.expires_at > now => Ok(BeginStart::InFlight {
                        claim_expires_at: held.expires_at,
                    }),
                    _ => {
                        row.claim = Some(claim.clone());
                        Ok(BeginStart::Claimed(claim))
                    }
                },
            }
        })
    }

    fn finish_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
        answer: &'a StartAnswer,
        operation: Option<&'a AsyncOperationRecord>,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        self.with(move |state| {
            check_answer(answer, operation)?;
            let now = truncate(now)?;
            let operation = operation.map(normalize_async).transpose()?;
            let held = state.starts.get(key).is_some_and(|row| {
                row.answer.is_none() && row.claim.as_ref().is_some_and(|c| c.id == claim.id)
            });
            if !held {
                return Ok(false);
            }
            if let Some(op) = operation {
                if state.operations.contains_key(&op.token) {
                    return Err(StoreError::Duplicate(format!(
                        "an async operation with token `{}` exists already",
                        op.token
                    )));
                }
                state.operations.insert(op.token.clone(), op);
            }
            if let Some(row) = state.starts.get_mut(key) {
                row.answer = Some(answer.clone());
                row.answered_at = Some(now);
                row.claim = None;
            }
            Ok(true)
        })
    }

    fn abandon_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
    ) -> StoreFuture<'a, bool> {
        self.with(move |state| {
            let held = state.starts.get(key).is_some_and(|row| {
                row.answer.is_none() && row.claim.as_ref().is_some_and(|c| c.id == claim.id)
            });
            if held {
                state.starts.remove(key);
            }
            Ok(held)
        })
    }

    fn get_async<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<AsyncOperationRecord>> {
        self.with(move |state| Ok(state.operations.get(token).cloned()))
    }

    fn request_cancel_async<'a>(
        &'a self,
        token: &'a str,
        at: SystemTime,
    ) -> StoreFuture<'a, CancelRequestOutcome> {
        self.with(move |state| {
            let at = truncate(at)?;
            let Some(op) = state.operations.get_mut(token) else {
                return Ok(CancelRequestOutcome::UnknownOperation);
            };
            Ok(if op.state.is_terminal() {
                CancelRequestOutcome::AlreadyFinished
            } else if op.cancel_requested_at.is_some() {
                CancelRequestOutcome::AlreadyRequested
            } else {
                op.cancel_requested_at = Some(at);
                CancelRequestOutcome::Requested
            })
        })
    }

    fn complete_async<'a>(
        &'a self,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompleteAsync> {
        self.with(move |state| {
            let now = truncate(now)?;
            let completion = normalize_completion(completion)?;
            let Some(op) = state.operations.get_mut(&completion.token) else {
                return Ok(CompleteAsync::UnknownOperation);
            };
            if op.state.is_terminal() {
                return Ok(CompleteAsync::AlreadyFinished(op.state));
            }
            op.state = AsyncState::of_completion(&completion);
            op.closed_at = Some(now);
            op.lease = None;
            let Some(callback) = op.callback.clone() else {
                return Ok(CompleteAsync::Applied { delivery: None });
            };
            let id = crate::id::new_v7();
            state.deliveries.insert(
                id,
                Delivery {
                    id,
                    url: callback.url,
                    headers: callback.headers,
                    completion,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at: now,
                    last_error: None,
                    created_at: now,
                    finished_at: None,
                },
            );
            Ok(CompleteAsync::Applied { delivery: Some(id) })
        })
    }

    fn retarget_async<'a>(
        &'a self,
        token: &'a str,
        callback: &'a StoredCallback,
        now: SystemTime,
    ) -> StoreFuture<'a, RetargetAsync> {
        self.with(move |state| {
            let now = truncate(now)?;
            let Some(op) = state.operations.get_mut(token) else {
                return Ok(RetargetAsync::UnknownOperation);
            };
            if !op.state.is_terminal() {
                if op.callback.as_ref() == Some(callback) {
                    return Ok(RetargetAsync::Unchanged);
                }
                op.callback = Some(callback.clone());
                return Ok(RetargetAsync::Updated);
            }
            let waiting = state
                .deliveries
                .values_mut()
                .find(|d| d.completion.token == token && d.state == DeliveryState::Pending);
            let Some(delivery) = waiting else {
                return Ok(RetargetAsync::Settled(op.state));
            };
            if delivery.url == callback.url && delivery.headers == callback.headers {
                return Ok(RetargetAsync::Unchanged);
            }
            delivery.url = callback.url.clone();
            delivery.headers = callback.headers.clone();
            delivery.next_attempt_at = now;
            op.callback = Some(callback.clone());
            Ok(RetargetAsync::Redirected {
                delivery: delivery.id,
            })
        })
    }

    fn list_unfinished_async(&self) -> StoreFuture<'_, Vec<AsyncOperationRecord>> {
        self.with(|state| {
            let mut list: Vec<AsyncOperationRecord> = state
                .operations
                .values()
                .filter(|op| !op.state.is_terminal())
                .cloned()
                .collect();
            list.sort_by(|a, b| (a.started_at, &a.token).cmp(&(b.started_at, &b.token)));
            Ok(list)
        })
    }

    fn claim_async<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        self.with(move |state| {
            let lease = Lease::new(owner, from_micros(expiry_micros(now, lease)?)?);
            let mut free: Vec<&mut AsyncOperationRecord> = state
                .operations
                .values_mut()
                .filter(|op| {
                    !op.state.is_terminal() && op.lease.as_ref().is_none_or(|l| l.is_expired(now))
                })
                .collect();
            free.sort_by(|a, b| (a.started_at, &a.token).cmp(&(b.started_at, &b.token)));
            Ok(free
                .into_iter()
                .take(limit)
                .map(|op| {
                    op.lease = Some(lease.clone());
                    op.clone()
                })
                .collect())
        })
    }

    fn renew_async<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, u64> {
        self.with(move |state| {
            let until = from_micros(expiry_micros(now, lease)?)?;
            let mut renewed = 0;
            for op in state.operations.values_mut() {
                if op.state.is_terminal() {
                    continue;
                }
                if let Some(held) = op.lease.as_mut().filter(|l| l.owner == owner) {
                    held.expires_at = held.expires_at.max(until);
                    renewed += 1;
                }
            }
            Ok(renewed)
        })
    }

    fn leased_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>> {
        self.with(move |state| Ok(owner_tokens(state, owner, |_| true)))
    }

    fn cancel_requested_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>> {
        self.with(move |state| {
            Ok(owner_tokens(state, owner, |op| {
                op.cancel_requested_at.is_some()
            }))
        })
    }

    fn release_async<'a>(&'a self, owner: &'a str, tokens: &'a [String]) -> StoreFuture<'a, u64> {
        self.with(move |state| {
            let mut released = 0;
            for token in tokens {
                if let Some(op) = state.operations.get_mut(token)
                    && op.lease.as_ref().is_some_and(|l| l.owner == owner)
                {
                    op.lease = None;
                    released += 1;
                }
            }
            Ok(released)
        })
    }

    fn purge_handled(&self, before: SystemTime) -> StoreFuture<'_, HandlerPurge> {
        self.with(move |state| {
            let mut purge = HandlerPurge::default();
            state.starts.retain(|_, row| {
                let old = match (&row.answered_at, &row.claim) {
                    (Some(at), _) => *at < before,
                    (None, Some(claim)) => claim.expires_at < before,
                    (None, None) => true,
                };
                purge.starts += u64::from(old);
                !old
            });
            state.operations.retain(|_, op| {
                let old = op.state.is_terminal() && op.closed_at.is_some_and(|t| t < before);
                purge.operations += u64::from(old);
                !old
            });
            Ok(purge)
        })
    }
}
