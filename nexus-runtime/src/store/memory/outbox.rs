//! [`OutboxStore`] in memory.

use std::time::{Duration, SystemTime};

use super::MemoryStore;
use crate::store::time::{expiry_micros, from_micros, truncate};
use crate::store::{Delivery, DeliveryId, DeliveryState, OutboxStore, StoreFuture};

impl OutboxStore for MemoryStore {
    fn list_deliveries<'a>(
        &'a self,
        query: &'a crate::store::DeliveryQuery,
    ) -> StoreFuture<'a, Vec<Delivery>> {
        self.with(|state| Ok(super::listing::deliveries(state, query)))
    }

    fn redeliver(&self, id: DeliveryId, now: SystemTime) -> StoreFuture<'_, bool> {
        self.with(move |state| super::listing::redeliver(state, id, now))
    }

    fn claim_due_deliveries(
        &self,
        now: SystemTime,
        visibility: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Delivery>> {
        self.with(move |state| {
            let hidden_until = from_micros(expiry_micros(now, visibility)?)?;
            let mut due: Vec<&mut Delivery> = state
                .deliveries
                .values_mut()
                .filter(|d| d.state == DeliveryState::Pending && d.next_attempt_at <= now)
                .collect();
            due.sort_by(|a, b| {
                (a.next_attempt_at, a.created_at, a.id).cmp(&(
                    b.next_attempt_at,
                    b.created_at,
                    b.id,
                ))
            });
            let mut claimed: Vec<Delivery> = due
                .into_iter()
                .take(limit)
                .map(|d| {
                    d.next_attempt_at = hidden_until;
                    d.clone()
                })
                .collect();
            claimed.sort_by_key(|a| (a.created_at, a.id));
            Ok(claimed)
        })
    }

    fn mark_delivered(&self, id: DeliveryId, now: SystemTime) -> StoreFuture<'_, bool> {
        self.with(move |state| {
            let now = truncate(now)?;
            Ok(pending(state.deliveries.get_mut(&id)).is_some_and(|d| {
                d.state = DeliveryState::Delivered;
                d.attempts += 1;
                d.finished_at = Some(now);
                true
            }))
        })
    }

    fn mark_retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        next_attempt_at: SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool> {
        self.with(move |state| {
            let next = truncate(next_attempt_at)?;
            Ok(
                same_target(state.deliveries.get_mut(&delivery.id), delivery).is_some_and(|d| {
                    d.attempts += 1;
                    d.next_attempt_at = next;
                    d.last_error = Some(error.to_owned());
                    true
                }),
            )
        })
    }

    fn mark_dead<'a>(
        &'a self,
        delivery: &'a Delivery,
        now: SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool> {
        self.with(move |state| {
            let now = truncate(now)?;
            Ok(
                same_target(state.deliveries.get_mut(&delivery.id), delivery).is_some_and(|d| {
                    d.state = DeliveryState::Dead;
                    d.attempts += 1;
                    d.finished_at = Some(now);
                    d.last_error = Some(error.to_owned());
                    true
                }),
            )
        })
    }

    fn get_delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
        self.with(move |state| Ok(state.deliveries.get(&id).cloned()))
    }

    fn list_dead_deliveries(&self, limit: usize) -> StoreFuture<'_, Vec<Delivery>> {
        self.with(move |state| {
            let mut dead: Vec<Delivery> = state
                .deliveries
                .values()
                .filter(|d| d.state == DeliveryState::Dead)
                .cloned()
                .collect();
            dead.sort_by_key(|d| std::cmp::Reverse((d.finished_at, d.id)));
            dead.truncate(limit);
            Ok(dead)
        })
    }

    fn purge_deliveries(&self, before: SystemTime) -> StoreFuture<'_, u64> {
        self.with(move |state| {
            let count = state.deliveries.len();
            state.deliveries.retain(|_, d| {
                d.state == DeliveryState::Pending || d.finished_at.is_none_or(|t| t >= before)
            });
            Ok((count - state.deliveries.len()) as u64)
        })
    }
}

fn pending(delivery: Option<&mut Delivery>) -> Option<&mut Delivery> {
    delivery.filter(|d| d.state == DeliveryState::Pending)
}

/// The stored delivery if it is pending and still goes where `claimed` went.
fn same_target<'d>(
    stored: Option<&'d mut Delivery>,
    claimed: &Delivery,
) -> Option<&'d mut Delivery> {
    pending(stored).filter(|d| d.url == claimed.url && d.headers == claimed.headers)
}
