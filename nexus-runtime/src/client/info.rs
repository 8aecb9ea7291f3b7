//! What a handle shows about its operation while it is pending, as Temporal shows pending
//! operations.

use tokio::time::Instant;

use crate::error::CallError;
use crate::link::Link;
pub use crate::state::OperationState;

/// Where a cancel request is. Why one is `Blocked` is not part of the state:
/// [`CancellationInfo::blocked_reason`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelState {
    /// Waiting to be sent, or in flight.
    Scheduled,
    /// The last attempt failed with a retryable error; the next one goes at `next_attempt_at`.
    BackingOff,
    /// Held back without an attempt (the circuit breaker is open).
    Blocked,
    /// The handler acknowledged it.
    Succeeded,
    /// It failed with a non-retryable error (often NOT_FOUND: the operation already ended).
    Failed,
    /// No request was sent: the cancellation type is `Abandon`, or the operation had not started
    /// and was stopped before it could.
    NotSent,
    /// The operation ended (completed, failed or canceled) while the cancel request was still
    /// scheduled, in flight or backing off, so no further attempt is made. Also what an operation
    /// read back from a store after a restart shows, since a cancel request's own progress is not
    /// recorded.
    OperationEnded,
}

impl CancelState {
    /// Whether the cancel request may still be sent or answered.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Scheduled | Self::BackingOff | Self::Blocked)
    }
}

/// The cancellation of an operation, once the caller asked for it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CancellationInfo {
    /// When the caller asked.
    pub requested_at: Instant,
    /// Where the cancel request is.
    pub state: CancelState,
    /// Why it is held back, while its state is [`CancelState::Blocked`] (`None` otherwise), such
    /// as [`BREAKER_OPEN_REASON`](crate::machinery::BREAKER_OPEN_REASON).
    pub blocked_reason: Option<String>,
    /// Cancel attempts made so far.
    pub attempt: u32,
    /// The last failed cancel attempt's error.
    pub last_failure: Option<CallError>,
    /// When the next cancel attempt goes out, while backing off.
    pub next_attempt_at: Option<Instant>,
}

impl CancellationInfo {
    /// A cancellation the caller asked for at `requested_at`, in `state`, before any attempt.
    pub(crate) fn new(requested_at: Instant, state: CancelState) -> Self {
        Self {
            requested_at,
            state,
            blocked_reason: None,
            attempt: 0,
            last_failure: None,
            next_attempt_at: None,
        }
    }

    /// Moves the cancel request to `state` (which is not `Blocked`: see [`Self::block`]).
    pub(crate) fn set_state(&mut self, state: CancelState) {
        change(&mut self.state, &mut self.blocked_reason, state, None);
    }

    /// Holds the cancel request back for `reason` until `until` (or a change of the breaker).
    pub(crate) fn block(&mut self, reason: &str, until: Option<Instant>) {
        change(
            &mut self.state,
            &mut self.blocked_reason,
            CancelState::Blocked,
            Some(reason),
        );
        self.next_attempt_at = until;
    }

    /// The operation ended: a cancel request still scheduled, in flight or backing off is not
    /// sent again.
    pub(crate) fn end_with_operation(&mut self) {
        if self.state.is_pending() {
            self.set_state(CancelState::OperationEnded);
            self.next_attempt_at = None;
        }
    }
}

/// A snapshot of a pending (or finished) operation.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OperationInfo {
    /// Where it is.
    pub state: OperationState,
    /// Why it is held back, while its state is [`OperationState::Blocked`] (`None` otherwise),
    /// such as [`BREAKER_OPEN_REASON`](crate::machinery::BREAKER_OPEN_REASON).
    pub blocked_reason: Option<String>,
    /// Start attempts made so far (the one in flight included).
    pub attempt: u32,
    /// The last failed start attempt's error (retryable failures only show here). Boxed, as is
    /// [`cancellation`](Self::cancellation): most operations never have one, and every pending
    /// operation keeps its info.
    pub last_failure: Option<Box<CallError>>,
    /// When the next attempt goes out (backing off) or the breaker may let it through (blocked).
    pub next_attempt_at: Option<Instant>,
    /// The operation token, once started asynchronously.
    pub token: Option<String>,
    /// The index of the endpoint target that started it.
    pub target: Option<usize>,
    /// When it was scheduled.
    pub scheduled_at: Instant,
    /// When it started (async token or sync result).
    pub started_at: Option<Instant>,
    /// When it ended.
    pub closed_at: Option<Instant>,
    /// Its cancellation, if the caller asked for one.
    pub cancellation: Option<Box<CancellationInfo>>,
    /// Links the handler returned with the start response (for example to the workflow it
    /// started).
    pub start_links: Vec<Link>,
    /// Links the handler sent with the completion.
    pub completion_links: Vec<Link>,
}

impl OperationInfo {
    pub(crate) fn new(scheduled_at: Instant) -> Self {
        Self {
            state: OperationState::Scheduled,
            blocked_reason: None,
            attempt: 0,
            last_failure: None,
            next_attempt_at: None,
            token: None,
            target: None,
            scheduled_at,
            started_at: None,
            closed_at: None,
            cancellation: None,
            start_links: Vec::new(),
            completion_links: Vec::new(),
        }
    }

    /// Moves the operation to `state` (which is not `Blocked`: see [`Self::block`]).
    pub(crate) fn set_state(&mut self, state: OperationState) {
        change(&mut self.state, &mut self.blocked_reason, state, None);
    }

    /// Holds the operation back for `reason` until `until` (or a change of the breaker).
    pub(crate) fn block(&mut self, reason: &str, until: Option<Instant>) {
        change(
            &mut self.state,
            &mut self.blocked_reason,
            OperationState::Blocked,
            Some(reason),
        );
        self.next_attempt_at = until;
    }
}

/// Moves `state` to `to`, with `reason` why it is blocked (`None` for any other state): a state
/// and its reason change together.
fn change<S>(state: &mut S, blocked_reason: &mut Option<String>, to: S, reason: Option<&str>) {
    *state = to;
    if blocked_reason.as_deref() != reason {
        *blocked_reason = reason.map(str::to_owned);
    }
}
