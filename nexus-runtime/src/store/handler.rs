//! The handler side: starts this process received, its async operations, and the outbox of their
//! completions.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::{CancelRequestOutcome, DeliveryId, Lease, StoreError, StoreFuture};
use crate::codec::Content;
use crate::completion::Completion;
use crate::error::Failure;
use crate::link::Link;
use crate::operation::Headers;
use crate::security::{Principal, redact_callback_url};

/// What identifies one start request across retries: handlers deduplicate on it.
///
/// Request ids are scoped by the caller's principal: the same request id from two principals is
/// two start requests, so a caller that learns (or guesses) another's request id gets an
/// operation of its own, never the other's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StartKey {
    /// The name of the principal that sent it ([`Principal::name`]; empty for the anonymous one).
    pub principal: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The request id.
    pub request_id: String,
}

/// The answer given to a start request, kept so a retry with the same request id gets it again.
#[derive(Clone, Debug, PartialEq)]
pub enum StartAnswer {
    /// The operation completed synchronously.
    Sync {
        /// The result.
        output: Content,
        /// Links returned with it.
        links: Vec<Link>,
    },
    /// The operation started asynchronously.
    Async {
        /// The operation token.
        token: String,
        /// Links returned with it.
        links: Vec<Link>,
    },
    /// The start failed for good: an OperationError, or a non-retryable HandlerError, as the
    /// Failure that was sent. (Do not record retryable errors: abandon the claim instead, so the
    /// retry runs the handler again.)
    Failed(Failure),
}

/// A claim on a start request: the right to run its handler once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartClaim {
    /// Identifies this claim; [`HandlerStore::finish_start`] must name it.
    pub id: uuid::Uuid,
    /// When another request with the same id may take the claim over (the claimant is presumed
    /// dead).
    pub expires_at: SystemTime,
}

/// What [`HandlerStore::begin_start`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum BeginStart {
    /// This request runs the handler; record its answer with [`HandlerStore::finish_start`].
    Claimed(StartClaim),
    /// A previous request with this id was answered: answer the same.
    Answered(StartAnswer),
    /// A previous request with this id is still running its handler: answer a retryable error,
    /// do not run it twice.
    InFlight {
        /// When that claim expires.
        claim_expires_at: SystemTime,
    },
}

/// Where an async operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AsyncState {
    /// Its work is running (or must be resumed).
    Running,
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// It was canceled.
    Canceled,
}

impl AsyncState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Running, Self::Succeeded, Self::Failed, Self::Canceled];

    /// The stored name: `running`, `succeeded`, `failed`, `canceled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Parses a stored name (also the `Nexus-Operation-State` of a completion).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the operation has ended.
    pub fn is_terminal(self) -> bool {
        self != Self::Running
    }

    /// The final state a completion gives.
    pub fn of_completion(completion: &Completion) -> Self {
        match &completion.outcome {
            Ok(_) => Self::Succeeded,
            Err(e) if e.is_canceled() => Self::Canceled,
            Err(_) => Self::Failed,
        }
    }
}

impl fmt::Display for AsyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to deliver a completion: the caller's callback URL and the headers to send with it.
/// (`Debug` shows the URL with its completion secret redacted.)
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCallback {
    /// The callback URL.
    pub url: String,
    /// Headers for the completion request.
    pub headers: Headers,
}

impl fmt::Debug for StoredCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCallback")
            .field("url", &redact_callback_url(&self.url))
            .field("headers", &self.headers)
            .finish()
    }
}

/// An async operation this process started for a caller, by token.
#[derive(Clone, Debug, PartialEq)]
pub struct AsyncOperationRecord {
    /// The operation token.
    pub token: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The request id it was started with.
    pub request_id: String,
    /// Who started it: the only principal that may cancel it (and whose repeated start may move
    /// its completion). Stored as its name and kind.
    pub principal: Principal,
    /// The encoded input (to resume the work).
    pub input: Content,
    /// The start request's headers.
    pub headers: Headers,
    /// The start request's links.
    pub links: Vec<Link>,
    /// Where its completion goes; `None` for in-process callers (nothing to deliver after a
    /// restart) or callers that gave no callback.
    pub callback: Option<StoredCallback>,
    /// Where it is.
    pub state: AsyncState,
    /// Whether its work can be resumed after a restart; otherwise it is failed at start-up.
    pub resumable: bool,
    /// When a cancel request arrived, if one did.
    pub cancel_requested_at: Option<SystemTime>,
    /// The operation deadline the caller gave.
    pub deadline: Option<SystemTime>,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended.
    pub closed_at: Option<SystemTime>,
    /// Who runs it, while unfinished.
    pub lease: Option<Lease>,
}

/// What [`HandlerStore::complete_async`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompleteAsync {
    /// The operation is finished; its completion delivery is enqueued if it has a callback.
    Applied {
        /// The enqueued delivery.
        delivery: Option<DeliveryId>,
    },
    /// No operation has this token.
    UnknownOperation,
    /// It had finished already; nothing changed.
    AlreadyFinished(AsyncState),
}

/// What [`HandlerStore::retarget_async`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetargetAsync {
    /// The operation is running: its record names the new callback, so its completion, when it
    /// comes, is delivered there.
    Updated,
    /// The operation had finished and its completion was waiting in the outbox: that delivery
    /// now goes to the new callback and is due at once (its attempts so far are kept).
    Redirected {
        /// The redirected delivery.
        delivery: DeliveryId,
    },
    /// The completion goes to this callback already (the running operation's, or its waiting
    /// delivery's); nothing changed.
    Unchanged,
    /// The operation had finished and nothing of it waits in the outbox (delivered, given up,
    /// or it had no callback): nothing changed.
    Settled(AsyncState),
    /// No operation has this token.
    UnknownOperation,
}

/// How many records [`HandlerStore::purge_handled`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandlerPurge {
    /// Deduplication records of starts.
    pub starts: u64,
    /// Finished async operations.
    pub operations: u64,
}

/// Checks that an answer and its operation record go together.
pub(crate) fn check_answer(
    answer: &StartAnswer,
    operation: Option<&AsyncOperationRecord>,
) -> Result<(), StoreError> {
    match (answer, operation) {
        (StartAnswer::Async { token, .. }, Some(op)) if &op.token == token => Ok(()),
        (StartAnswer::Async { token, .. }, Some(op)) => Err(StoreError::Invalid(format!(
            "the async answer has token `{token}` but its operation record has `{}`",
            op.token
        ))),
        (StartAnswer::Async { .. }, None) => Err(StoreError::Invalid(
            "an async answer needs its operation record".into(),
        )),
        (_, Some(_)) => Err(StoreError::Invalid(
            "only an async answer has an operation record".into(),
        )),
        (_, None) => Ok(()),
    }
}

/// Storage for a handler: deduplication of starts, async operations, and the step that finishes
/// one and enqueues its completion in the [`OutboxStore`](super::OutboxStore).
/// Object-safe: use it as `Arc<dyn HandlerStore>`.
pub trait HandlerStore: Send + Sync + 'static {
    /// Claims the right to run the start request `key`, or returns what a previous request with
    /// the same key got. An unanswered claim whose `expires_at` has passed at `now` is taken over
    /// (its claimant is presumed dead); a live one is [`BeginStart::InFlight`]. The new claim
    /// lasts until `claim_until` (say, the request deadline plus a margin).
    fn begin_start<'a>(
        &'a self,
        key: &'a StartKey,
        now: SystemTime,
        claim_until: SystemTime,
    ) -> StoreFuture<'a, BeginStart>;

    /// Records the answer to a claimed start. For [`StartAnswer::Async`], `operation` is its
    /// record (same token), inserted in the same transaction; for the others it must be `None`.
    /// Returns `false` (and changes nothing) if the claim was lost to another request.
    fn finish_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
        answer: &'a StartAnswer,
        operation: Option<&'a AsyncOperationRecord>,
        now: SystemTime,
    ) -> StoreFuture<'a, bool>;

    /// Drops an unanswered claim, so a retry runs the handler again (after a retryable error, a
    /// panic or a missed deadline). Returns `false` if the claim was not held.
    fn abandon_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
    ) -> StoreFuture<'a, bool>;

    /// The async operation with this token.
    fn get_async<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<AsyncOperationRecord>>;

    /// Records that a cancel request arrived for the operation, at `at`.
    fn request_cancel_async<'a>(
        &'a self,
        token: &'a str,
        at: SystemTime,
    ) -> StoreFuture<'a, CancelRequestOutcome>;

    /// Finishes the operation `completion.token` and, in the same transaction, enqueues the
    /// delivery of `completion` to its callback, due at `now`.
    fn complete_async<'a>(
        &'a self,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompleteAsync>;

    /// Makes `callback` where the completion of operation `token` goes, in one step: a repeated
    /// start with the operation's request id names where its caller listens now. (Only the
    /// starting principal's repeated start gets here: its key found the recorded answer.) A running
    /// operation's record is updated (the completion enqueued later uses it); a finished one's
    /// pending delivery (waiting or backing off) is redirected and made due at `now`, and its
    /// record updated alike. A delivery that was accepted or given up is left alone.
    ///
    /// A delivery attempt in flight to the previous callback may still succeed (accepted is
    /// done); if it fails, its [`OutboxStore::mark_retry`](super::OutboxStore::mark_retry) or
    /// [`mark_dead`](super::OutboxStore::mark_dead) no longer applies, so the redirected delivery
    /// is neither delayed nor lost.
    fn retarget_async<'a>(
        &'a self,
        token: &'a str,
        callback: &'a StoredCallback,
        now: SystemTime,
    ) -> StoreFuture<'a, RetargetAsync>;

    /// Every running async operation, oldest first (to resume or fail them at start-up).
    fn list_unfinished_async(&self) -> StoreFuture<'_, Vec<AsyncOperationRecord>>;

    /// Claims up to `limit` running operations whose lease is free or expired, for `owner` until
    /// `now + lease`; atomic, as [`CallerStore::claim`](super::CallerStore::claim).
    fn claim_async<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>>;

    /// Extends every lease `owner` holds on a running operation to `now + lease`, unless it ends
    /// later already; returns how many (not their tokens: a renewal runs every third of a lease,
    /// however many operations run). A store may write one heartbeat for the owner rather than
    /// each lease (SQLite and PostgreSQL do): a lease is then live while its own expiry or its
    /// owner's heartbeat is, and reads show the later of the two.
    fn renew_async<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, u64>;

    /// The tokens of the running operations `owner` holds a lease on, expired or not, sorted.
    fn leased_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>>;

    /// The tokens of the running operations `owner` holds whose cancellation was requested (a
    /// request that reached another replica, or came before a resume), sorted: one query, however
    /// many operations run.
    fn cancel_requested_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>>;

    /// Gives up `owner`'s leases on `tokens`; returns how many.
    fn release_async<'a>(&'a self, owner: &'a str, tokens: &'a [String]) -> StoreFuture<'a, u64>;

    /// Deletes what is no longer needed from before `before`: answered starts (and claims that
    /// expired) and finished operations. (Deliveries: [`OutboxStore::purge_deliveries`](super::OutboxStore::purge_deliveries).)
    fn purge_handled(&self, before: SystemTime) -> StoreFuture<'_, HandlerPurge>;

    /// A page of async operations (finished ones included, until purged) that `query` selects,
    /// oldest started first, then by token. Every store here implements it; the default refuses.
    fn list_async<'a>(
        &'a self,
        query: &'a super::AsyncQuery,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        let _ = query;
        Box::pin(std::future::ready(Err(super::listing::unsupported(
            "list async operations",
        ))))
    }
}
