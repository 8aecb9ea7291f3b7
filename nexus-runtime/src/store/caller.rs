//! The caller side: operations this process started.

use std::time::{Duration, SystemTime};

use super::{Lease, StoreFuture};
use crate::codec::Content;
use crate::completion::Completion;
use crate::error::Failure;
use crate::link::Link;
use crate::security::CallbackSecret;
pub use crate::state::OperationState;

/// The id of a caller's operation. It is also its callback id: the last segment of the callback
/// URL a handler posts the completion to.
pub type OperationId = uuid::Uuid;

/// The deadlines of an operation, as absolute times (computed from its timeouts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationDeadlines {
    /// The end of the schedule-to-close timeout.
    pub schedule_to_close: Option<SystemTime>,
    /// The end of the schedule-to-start timeout.
    pub schedule_to_start: Option<SystemTime>,
    /// The end of the start-to-close timeout (known once started).
    pub start_to_close: Option<SystemTime>,
}

/// How a caller's operation is found again by the request id it was started with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// The endpoint name.
    pub endpoint: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The request id.
    pub request_id: String,
}

impl RequestKey {
    /// A key of empty strings (allocates nothing).
    pub(crate) fn empty() -> Self {
        Self {
            endpoint: String::new(),
            service: String::new(),
            operation: String::new(),
            request_id: String::new(),
        }
    }
}

/// One operation this process started.
///
/// Fixed at insert: `id`, the [`RequestKey`] fields, `input`, `options`, `callback_secret`,
/// `scheduled_at`. The rest
/// changes through [`CallerStore::update`] (compare-and-set on `version`),
/// [`CallerStore::record_completion`], [`CallerStore::request_cancel`] and the lease methods.
#[derive(Clone, Debug, PartialEq)]
pub struct CallerRecord {
    /// Its id, also its callback id.
    pub id: OperationId,
    /// The endpoint name.
    pub endpoint: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The request id, the same on every attempt.
    pub request_id: String,
    /// The encoded input.
    pub input: Content,
    /// The call's options (timeouts, headers, links, cancellation type, retry overrides),
    /// serialized by the client; the store keeps it as JSON text without reading it.
    pub options: serde_json::Value,
    /// Where it is.
    pub state: OperationState,
    /// Bumped by the store on every change; [`CallerStore::update`] compares it.
    pub version: u64,
    /// Start attempts made so far.
    pub attempt: u32,
    /// When the next attempt goes out (backing off or blocked).
    pub next_attempt_at: Option<SystemTime>,
    /// The last failed attempt's error. Boxed, as [`error`](Self::error) is: most records have
    /// neither, and a client keeps a copy of the record of every operation it runs.
    pub last_failure: Option<Box<Failure>>,
    /// The endpoint target that started it (a URL or a name; opaque to the store), so cancel
    /// requests go to the same place after a restart.
    pub target: Option<String>,
    /// The operation token, once started asynchronously (or learned from an early completion).
    pub token: Option<String>,
    /// Links the handler returned with the start response.
    pub start_links: Vec<Link>,
    /// The result, once succeeded.
    pub result: Option<Content>,
    /// Why it ended unsuccessfully (failed, canceled, timed out), as a Failure.
    pub error: Option<Box<Failure>>,
    /// Links the handler sent with the completion.
    pub completion_links: Vec<Link>,
    /// When the caller asked to cancel it, if it did.
    pub cancel_requested_at: Option<SystemTime>,
    /// When it was scheduled (recorded).
    pub scheduled_at: SystemTime,
    /// When it started (async token or sync result received).
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub closed_at: Option<SystemTime>,
    /// Its deadlines.
    pub deadlines: OperationDeadlines,
    /// Who drives it, while unfinished.
    pub lease: Option<Lease>,
    /// The secret its callback URL carries: the callback receiver accepts a completion for it
    /// only with this secret. `None` for a record made before completion secrets existed (see
    /// [`ClientBuilder::accept_legacy_unsigned_completions`](crate::client::ClientBuilder::accept_legacy_unsigned_completions)).
    pub callback_secret: Option<CallbackSecret>,
}

impl CallerRecord {
    /// Ends this record with `completion`, received at `now`: its state, result or error and
    /// completion links, and the token it names if none was known. (The checks that come first,
    /// an unknown or finished operation or a contradicting token, are the store's.)
    pub(crate) fn apply_completion(&mut self, completion: &Completion, now: SystemTime) {
        if self.token.is_none() && !completion.token.is_empty() {
            self.token = Some(completion.token.clone());
        }
        self.state = completion.final_state();
        self.result = completion.outcome.as_ref().ok().cloned();
        self.error = completion
            .outcome
            .as_ref()
            .err()
            .map(|e| Box::new(e.to_failure()));
        self.completion_links = completion.links.clone();
        self.closed_at = Some(now);
        self.next_attempt_at = None;
        self.lease = None;
    }

    /// The token this record knows, if `completion` names another one (a completion that names
    /// none names no other).
    pub(crate) fn token_contradicted_by(&self, completion: &Completion) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|known| !completion.token.is_empty() && completion.token != *known)
    }

    /// Whether this record ended with exactly `completion` (same token, same outcome): the same
    /// completion received again.
    pub(crate) fn ended_with(&self, completion: &Completion) -> bool {
        if completion.token.is_empty()
            || self.token.as_deref() != Some(completion.token.as_str())
            || self.state != completion.final_state()
        {
            return false;
        }
        match &completion.outcome {
            Ok(result) => self.result.as_ref().map(|r| &r.data) == Some(&result.data),
            Err(error) => self.error.as_deref() == Some(&error.to_failure()),
        }
    }

    /// A new record in state `scheduled`, version 0, no attempt yet.
    pub fn new(
        id: OperationId,
        key: RequestKey,
        input: Content,
        options: serde_json::Value,
        scheduled_at: SystemTime,
    ) -> Self {
        Self {
            id,
            endpoint: key.endpoint,
            service: key.service,
            operation: key.operation,
            request_id: key.request_id,
            input,
            options,
            state: OperationState::Scheduled,
            version: 0,
            attempt: 0,
            next_attempt_at: None,
            last_failure: None,
            target: None,
            token: None,
            start_links: Vec::new(),
            result: None,
            error: None,
            completion_links: Vec::new(),
            cancel_requested_at: None,
            scheduled_at,
            started_at: None,
            closed_at: None,
            deadlines: OperationDeadlines::default(),
            lease: None,
            callback_secret: None,
        }
    }

    /// Its [`RequestKey`].
    pub fn request_key(&self) -> RequestKey {
        RequestKey {
            endpoint: self.endpoint.clone(),
            service: self.service.clone(),
            operation: self.operation.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// Whether the caller asked to cancel it.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested_at.is_some()
    }
}

/// What [`CallerStore::insert`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum InsertOutcome {
    /// The record was inserted.
    Inserted,
    /// An operation with the same [`RequestKey`] exists already: this one, unchanged. A caller
    /// restarted with the same request id attaches to it instead of starting a second one.
    Exists(Box<CallerRecord>),
}

/// What [`CallerStore::record_completion`] did. The callback receiver answers 200 for
/// `Applied` (and for `AlreadyFinished` when the record holds this very completion: a repeat),
/// 404 for `UnknownOperation` and other `AlreadyFinished`, 400 for `TokenMismatch`.
#[derive(Clone, Debug, PartialEq)]
pub enum CompletionOutcome {
    /// The completion was recorded and the operation is finished. The rest of the record is what
    /// the completion says (state, result or error, links) at `now`, its lease released.
    Applied(AppliedCompletion),
    /// No operation has this id.
    UnknownOperation,
    /// The operation had already finished (a repeated completion, or it timed out or was
    /// canceled first); nothing changed.
    AlreadyFinished(OperationState),
    /// The completion names another token than the start response gave; nothing changed.
    TokenMismatch {
        /// The token the operation has.
        expected: String,
    },
}

/// What recording a completion made of the record, beyond what the completion itself says: the
/// record is not read back whole (its input and options are unchanged, and would be decoded only
/// to be dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedCompletion {
    /// The record's version now (bumped by the completion).
    pub version: u64,
    /// The token the record holds now: the one it had, or the completion's if it had none.
    pub token: Option<String>,
}

/// What [`CallerStore::request_cancel`] (or [`HandlerStore::request_cancel_async`]) did.
///
/// [`HandlerStore::request_cancel_async`]: super::HandlerStore::request_cancel_async
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelRequestOutcome {
    /// The request was recorded (and the version bumped).
    Requested,
    /// A cancel had already been requested; nothing changed.
    AlreadyRequested,
    /// The operation had already finished; nothing changed.
    AlreadyFinished,
    /// No such operation.
    UnknownOperation,
}

/// Storage for the operations a caller started. Object-safe: use it as `Arc<dyn CallerStore>`.
///
/// Invariants every implementation keeps (the shared test suite checks them):
/// - a finished record (terminal state) never changes again, except by
///   [`purge_finished`](Self::purge_finished);
/// - every change bumps `version`, except lease renewal and release;
/// - finishing an operation clears its lease.
pub trait CallerStore: Send + Sync + 'static {
    /// Records a new operation (before its first attempt), with its lease if given.
    ///
    /// Errors with [`StoreError::Duplicate`](super::StoreError::Duplicate) if another record has
    /// the same id.
    fn insert<'a>(&'a self, record: &'a CallerRecord) -> StoreFuture<'a, InsertOutcome>;

    /// The operation with this id.
    fn get(&self, id: OperationId) -> StoreFuture<'_, Option<CallerRecord>>;

    /// The operation started with this request id.
    fn find_by_request_id<'a>(
        &'a self,
        key: &'a RequestKey,
    ) -> StoreFuture<'a, Option<CallerRecord>>;

    /// Every unfinished operation, oldest first (to resume them after a restart).
    fn list_unfinished(&self) -> StoreFuture<'_, Vec<CallerRecord>>;

    /// Writes the changeable fields of `record` if the stored version is still `record.version`
    /// and the stored state is not terminal; then bumps `record.version` and returns `true`.
    /// The changeable fields are the state, attempt, next attempt, last failure, target, token,
    /// links, result, error, the cancel request's time, the started and closed times and the
    /// deadlines. The others are fixed at insert (the id, request key, input, options, schedule
    /// time and callback secret): an update must not write them, and the runtime leaves them
    /// empty in the records it gives.
    /// Returns `false` and changes nothing otherwise: something else changed the operation (a
    /// completion, a cancel request, another owner's claim); read it again.
    ///
    /// Moving to a terminal state clears the lease. The lease itself is not written here.
    fn update<'a>(&'a self, record: &'a mut CallerRecord) -> StoreFuture<'a, bool>;

    /// Records that the caller asked to cancel the operation, at `at`.
    fn request_cancel(
        &self,
        id: OperationId,
        at: SystemTime,
    ) -> StoreFuture<'_, CancelRequestOutcome>;

    /// Records a completion received for callback id `id`, durably, before the receiver answers.
    /// Applies to any unfinished operation, even one whose token is not recorded yet (the
    /// completion arrived before the start response was processed): the token is then taken from
    /// the completion. `now` becomes `closed_at`.
    fn record_completion<'a>(
        &'a self,
        id: OperationId,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompletionOutcome>;

    /// Claims up to `limit` unfinished operations whose lease is free or expired at `now`, for
    /// `owner` until `now + lease`. Atomic: two owners claiming at once never get the same
    /// operation. Returns them (with their new lease and version), oldest first.
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<CallerRecord>>;

    /// Extends to `now + lease` every lease `owner` still holds on an unfinished operation (unless
    /// it ends later already); returns their ids. An operation the owner thinks it drives but that
    /// is not returned was taken over: stop driving it. A store may write one heartbeat for the
    /// owner rather than each lease (SQLite and PostgreSQL do): a lease is then live while its own
    /// expiry or its owner's heartbeat is, and reads show the later of the two.
    fn renew<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<OperationId>>;

    /// Gives up `owner`'s leases on `ids`; returns how many were released.
    fn release<'a>(&'a self, owner: &'a str, ids: &'a [OperationId]) -> StoreFuture<'a, u64>;

    /// Gives up every lease `owner` holds (at shutdown); returns how many were released.
    fn release_all<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, u64>;

    /// Deletes finished operations closed before `closed_before`; returns how many.
    fn purge_finished(&self, closed_before: SystemTime) -> StoreFuture<'_, u64>;

    /// A page of operations (finished ones included, until purged) that `query` selects, oldest
    /// scheduled first, then by id. Every store here implements it; the default refuses.
    fn list_operations<'a>(
        &'a self,
        query: &'a super::CallerQuery,
    ) -> StoreFuture<'a, Vec<CallerRecord>> {
        let _ = query;
        Box::pin(std::future::ready(Err(super::listing::unsupported(
            "list operations",
        ))))
    }

    /// The `limit` most recently scheduled operations (finished ones included, until purged;
    /// at most [`MAX_PAGE`](super::MAX_PAGE), [`DEFAULT_PAGE`](super::DEFAULT_PAGE) when 0),
    /// newest first, then by id, descending. Every store here implements it; the default
    /// refuses.
    fn list_recent_operations(&self, limit: usize) -> StoreFuture<'_, Vec<CallerRecord>> {
        let _ = limit;
        Box::pin(std::future::ready(Err(super::listing::unsupported(
            "list recent operations",
        ))))
    }
}
