//! What a handle shows about its operation while it is pending, as Temporal shows pending
//! operations.

use tokio::time::Instant;

use crate::error::CallError;
use crate::link::Link;
use crate::store;

/// Where an operation is in its life, as its handle shows it: the states of
/// [`store::OperationState`] (the one list of them, with their stored names), `Blocked` with
/// its reason.
///
/// ```text
/// Scheduled ─(breaker open)─> Blocked ─> Scheduled ─> attempt ─┬─> Succeeded (sync result)
///     ^                                                        ├─> Started (async, token) ─> Succeeded | Failed | Canceled
///     └──────────── BackingOff <─(retryable failure)───────────┤
///                                                              └─> Failed (non-retryable)
/// any pending state ─> TimedOut | Canceled
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperationState {
    /// Waiting for its next attempt to go out (or in flight), not started yet.
    Scheduled,
    /// The last attempt failed with a retryable error; the next one goes at `next_attempt_at`.
    BackingOff,
    /// Held back without an attempt, for `reason` (the circuit breaker is open).
    Blocked {
        /// Why, such as [`BREAKER_OPEN_REASON`](crate::machinery::BREAKER_OPEN_REASON).
        reason: String,
    },
    /// The handler started it asynchronously; its token is known and its result will come.
    Started,
    /// It produced its result.
    Succeeded,
    /// It failed: an OperationError, a non-retryable HandlerError, or retries ran out.
    Failed,
    /// It was canceled (by the handler, or by the caller according to its cancellation type).
    Canceled,
    /// A timeout expired.
    TimedOut,
}

impl OperationState {
    /// The state as a store keeps it ([`store::OperationState`], the one list of the life
    /// cycle's states and their names): the same state, without the reason of `Blocked`.
    pub fn stored(&self) -> store::OperationState {
        match self {
            Self::Scheduled => store::OperationState::Scheduled,
            Self::BackingOff => store::OperationState::BackingOff,
            Self::Blocked { .. } => store::OperationState::Blocked,
            Self::Started => store::OperationState::Started,
            Self::Succeeded => store::OperationState::Succeeded,
            Self::Failed => store::OperationState::Failed,
            Self::Canceled => store::OperationState::Canceled,
            Self::TimedOut => store::OperationState::TimedOut,
        }
    }

    /// The state a handle shows for a stored one; a stored `blocked` was blocked by the circuit
    /// breaker ([`BREAKER_OPEN_REASON`](crate::machinery::BREAKER_OPEN_REASON)).
    pub fn from_stored(state: store::OperationState) -> Self {
        match state {
            store::OperationState::Scheduled => Self::Scheduled,
            store::OperationState::BackingOff => Self::BackingOff,
            store::OperationState::Blocked => Self::Blocked {
                reason: crate::machinery::BREAKER_OPEN_REASON.to_owned(),
            },
            store::OperationState::Started => Self::Started,
            store::OperationState::Succeeded => Self::Succeeded,
            store::OperationState::Failed => Self::Failed,
            store::OperationState::Canceled => Self::Canceled,
            store::OperationState::TimedOut => Self::TimedOut,
        }
    }

    /// The state's name, as stored and shown in spans, metrics and the admin API
    /// (`scheduled`, `backing_off`, `blocked`, ...).
    pub fn as_str(&self) -> &'static str {
        self.stored().as_str()
    }

    /// Whether the operation has ended.
    pub fn is_terminal(&self) -> bool {
        self.stored().is_terminal()
    }

    /// Whether it has started (async, with a token) or ended.
    pub fn is_started_or_done(&self) -> bool {
        matches!(self, Self::Started) || self.is_terminal()
    }
}

/// Where a cancel request is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelState {
    /// Waiting to be sent, or in flight.
    Scheduled,
    /// The last attempt failed with a retryable error; the next one goes at `next_attempt_at`.
    BackingOff,
    /// Held back by the circuit breaker.
    Blocked {
        /// Why.
        reason: String,
    },
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
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            Self::Scheduled | Self::BackingOff | Self::Blocked { .. }
        )
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
    /// Cancel attempts made so far.
    pub attempt: u32,
    /// The last failed cancel attempt's error.
    pub last_failure: Option<CallError>,
    /// When the next cancel attempt goes out, while backing off.
    pub next_attempt_at: Option<Instant>,
}

impl CancellationInfo {
    /// The operation ended: a cancel request still scheduled, in flight or backing off is not
    /// sent again.
    pub(crate) fn end_with_operation(&mut self) {
        if self.state.is_pending() {
            self.state = CancelState::OperationEnded;
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
    /// Start attempts made so far (the one in flight included).
    pub attempt: u32,
    /// The last failed start attempt's error (retryable failures only show here).
    pub last_failure: Option<CallError>,
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
    pub cancellation: Option<CancellationInfo>,
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
}
