//! Listing in memory: the same filters, order and paging as the SQL stores.

use std::time::SystemTime;

use super::State;
use crate::store::listing::{admits, is_after, page_size};
use crate::store::time::truncate;
use crate::store::{
    AsyncOperationRecord, AsyncQuery, CallerQuery, CallerRecord, Delivery, DeliveryId,
    DeliveryQuery, DeliveryState, StoreError,
};

/// The first `limit` of `items` in order, after sorting by `key`.
fn page<T: Clone, K: Ord>(mut items: Vec<&T>, key: impl Fn(&T) -> K, limit: usize) -> Vec<T> {
    items.sort_by_key(|item| key(item));
    items.into_iter().take(page_size(limit)).cloned().collect()
}

pub(super) fn caller(state: &State, q: &CallerQuery) -> Vec<CallerRecord> {
    let selected = state
        .caller
        .values()
        .filter(|r| admits(&q.states, &r.state))
        .filter(|r| q.endpoint.as_ref().is_none_or(|e| *e == r.endpoint))
        .filter(|r| q.service.as_ref().is_none_or(|s| *s == r.service))
        .filter(|r| is_after(q.after.as_ref(), r.scheduled_at, &r.id.to_string()))
        .collect();
    page(selected, |r| (r.scheduled_at, r.id), q.limit)
}

pub(super) fn recent(state: &State, limit: usize) -> Vec<CallerRecord> {
    let mut all: Vec<&CallerRecord> = state.caller.values().collect();
    all.sort_by_key(|r| std::cmp::Reverse((r.scheduled_at, r.id)));
    all.into_iter().take(page_size(limit)).cloned().collect()
}

pub(super) fn async_ops(state: &State, q: &AsyncQuery) -> Vec<AsyncOperationRecord> {
    let selected = state
        .operations
        .values()
        .filter(|r| admits(&q.states, &r.state))
        .filter(|r| q.service.as_ref().is_none_or(|s| *s == r.service))
        .filter(|r| is_after(q.after.as_ref(), r.started_at, &r.token))
        .collect();
    page(selected, |r| (r.started_at, r.token.clone()), q.limit)
}

pub(super) fn deliveries(state: &State, q: &DeliveryQuery) -> Vec<Delivery> {
    let selected = state
        .deliveries
        .values()
        .filter(|d| admits(&q.states, &d.state))
        .filter(|d| {
            !q.failed_only || (d.last_error.is_some() && d.state != DeliveryState::Delivered)
        })
        .filter(|d| is_after(q.after.as_ref(), d.created_at, &d.id.to_string()))
        .collect();
    page(selected, |d| (d.created_at, d.id), q.limit)
}

pub(super) fn redeliver(
    state: &mut State,
    id: DeliveryId,
    now: SystemTime,
) -> Result<bool, StoreError> {
    let now = truncate(now)?;
    Ok(match state.deliveries.get_mut(&id) {
        Some(d) if d.state == DeliveryState::Dead => {
            d.state = DeliveryState::Pending;
            d.next_attempt_at = now;
            d.finished_at = None;
            true
        }
        _ => false,
    })
}
