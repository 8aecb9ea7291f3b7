//! The handler's outbox: completions waiting to be delivered to callers' callback URLs.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::StoreFuture;
use crate::completion::Completion;
use crate::operation::Headers;
use crate::security::redact_callback_url;

/// The id of a completion delivery.
pub type DeliveryId = uuid::Uuid;

/// Where a completion delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting to be sent (again) at `next_attempt_at`.
    Pending,
    /// The callback receiver acknowledged it.
    Delivered,
    /// Given up: a non-retryable answer, or it expired.
    Dead,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Dead];

    /// The stored name: `pending`, `delivered`, `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One completion in the outbox. (`Debug` shows the URL with its completion secret redacted.)
#[derive(Clone, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The callback URL.
    pub url: String,
    /// Headers for the completion request.
    pub headers: Headers,
    /// The completion (its token is the operation's).
    pub completion: Completion,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts whose result was recorded.
    pub attempts: u32,
    /// When it is due (pending), or when it was last due.
    pub next_attempt_at: SystemTime,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: SystemTime,
    /// When it was delivered or declared dead.
    pub finished_at: Option<SystemTime>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("url", &redact_callback_url(&self.url))
            .field("headers", &self.headers)
            .field("completion", &self.completion)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("last_error", &self.last_error)
            .field("created_at", &self.created_at)
            .field("finished_at", &self.finished_at)
            .finish()
    }
}

/// The outbox of completion deliveries, filled by [`HandlerStore::complete_async`] and drained
/// by the completion sender. Object-safe: use it as `Arc<dyn OutboxStore>`.
///
/// [`HandlerStore::complete_async`]: super::HandlerStore::complete_async
pub trait OutboxStore: Send + Sync + 'static {
    /// Takes up to `limit` pending deliveries due at `now`, oldest due first, and hides them from
    /// other takers until `now + visibility` (by moving their due time): a sender that dies
    /// mid-delivery loses them only that long. Atomic across store handles. A store may answer
    /// before the claim is durable (SQLite does, to spare a flush before each delivery): a claim
    /// lost to a fault or a crash leaves them due as they were, and they are sent again (every
    /// delivery is at least once).
    fn claim_due_deliveries(
        &self,
        now: SystemTime,
        visibility: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Delivery>>;

    /// Marks a pending delivery delivered (counting the attempt); `false` if it was not pending.
    fn mark_delivered(&self, id: DeliveryId, now: SystemTime) -> StoreFuture<'_, bool>;

    /// Records a failed, retryable attempt of `delivery` (as claimed): counts it, keeps `error`,
    /// due again at `next_attempt_at`. `false` if it is not pending, or no longer goes to the
    /// callback (URL and headers) the attempt went to: it was
    /// [redirected](super::HandlerStore::retarget_async) meanwhile, and its next attempt must not
    /// wait for the failure of one to a callback the caller left.
    fn mark_retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        next_attempt_at: SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool>;

    /// Gives `delivery` (as claimed) up (a non-retryable answer, or it expired), counting the
    /// attempt and keeping `error`. `false` if it is not pending, or was redirected to another
    /// callback meanwhile (see [`mark_retry`](Self::mark_retry)).
    fn mark_dead<'a>(
        &'a self,
        delivery: &'a Delivery,
        now: SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool>;

    /// The delivery with this id.
    fn get_delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>>;

    /// Up to `limit` dead deliveries, most recent first (for operators).
    fn list_dead_deliveries(&self, limit: usize) -> StoreFuture<'_, Vec<Delivery>>;

    /// Deletes delivered and dead deliveries finished before `before`; returns how many. Pending
    /// deliveries are never deleted.
    fn purge_deliveries(&self, before: SystemTime) -> StoreFuture<'_, u64>;

    /// A page of deliveries that `query` selects, oldest enqueued first, then by id. Every store
    /// here implements it; the default refuses.
    fn list_deliveries<'a>(
        &'a self,
        query: &'a super::DeliveryQuery,
    ) -> StoreFuture<'a, Vec<Delivery>> {
        let _ = query;
        Box::pin(std::future::ready(Err(super::listing::unsupported(
            "list deliveries",
        ))))
    }

    /// Gives a dead delivery another chance (an operator's decision, once the caller can take
    /// it): pending again, due at `now`, its attempts and last error kept. `false` if it is not
    /// dead (unknown, pending or delivered). Every store here implements it; the default refuses.
    fn redeliver(&self, id: DeliveryId, now: SystemTime) -> StoreFuture<'_, bool> {
        let _ = (id, now);
        Box::pin(std::future::ready(Err(super::listing::unsupported(
            "redeliver",
        ))))
    }
}
