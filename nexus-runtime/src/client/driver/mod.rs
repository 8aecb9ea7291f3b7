//! The operation driver: one task per operation runs its state machine, from scheduling to its
//! end, and publishes every transition in the record cell that handles observe.
//!
//! ```text
//! Scheduled -> (breaker: Blocked while open) -> (limits: queued) -> attempt
//!   -> Succeeded (sync result) | Started (async token) | BackingOff (retryable) -> Scheduled ...
//!   -> Failed (non-retryable) | TimedOut | Canceled
//! Started -> Succeeded | Failed | Canceled (completion) | TimedOut | Canceled (by the caller)
//! ```
//!
//! Every transition goes through [`Driver::publish`], which records it in the caller's store
//! (compare-and-set on the record's version) before handles observe it; see `persist`. A driver
//! starts from a stored record: a new one (just inserted) or one resumed after a restart or
//! claimed from another replica, in whatever state it was recorded.
//!
//! The driver ends when the operation ends, once a requested cancellation has been carried out,
//! when the operation ended elsewhere (a completion recorded by a receiver) or was taken over by
//! another replica, or, for a client without a configured store, when every handle is dropped
//! without a cancellation (the operation is *abandoned*: no cancel request is sent, as Temporal
//! does for a terminated caller). With a configured store operations outlive their handles.
//!
//! A driver runs either as its own task ([`Driver::run`]) or inline in the future of an awaited
//! call ([`Driver::run_inline`]), for a client that keeps nothing once an operation ends (one
//! built without a store): that future is then the operation's only observer, and dropping it
//! abandons the operation as dropping every handle does. Both run the same state machine and
//! record every transition the same way.

mod cancel;
mod persist;
mod start;
mod started;
mod wait;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::durable::mirror::Ended;
use super::record_cell;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::info::{CancelState, CancellationInfo, OperationInfo, OperationState};
use super::key::OperationKey;
use super::pending::{Inbound, Local};
use super::queue::{Receiver, WeakSender};
use super::{CancellationType, Client, EndpointState};
use crate::codec::Content;
use crate::error::{CallError, OperationErrorState, TimeoutKind};
use crate::link::Link;
use crate::machinery::{Deadlines, RetryPolicy};
use crate::observe::TraceContext;
use crate::observe::metrics::Pending;
use crate::observe::spans;
use crate::observe::spans::InSpan as _;
use crate::operation::Headers;
use crate::security::CallbackSecret;
use crate::store::{self, CallerRecord, OperationId};

/// The result a handle waits for.
pub(crate) type Outcome = Result<Content, CallError>;

/// What the driver publishes: the operation's info, and its outcome once known (boxed: most of
/// an operation's life is spent without one, and a pending operation's record is what it keeps).
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: OperationId,
    pub info: OperationInfo,
    pub outcome: Option<Box<Outcome>>,
}

impl Record {
    pub fn new(id: OperationId, scheduled_at: Instant) -> Self {
        Self {
            id,
            info: OperationInfo::new(scheduled_at),
            outcome: None,
        }
    }

    /// A copy of its outcome, once known.
    pub fn cloned_outcome(&self) -> Option<Outcome> {
        self.outcome.as_deref().cloned()
    }
}

/// The state shown to handles, and when the operation was scheduled (for its metrics).
fn shown_state(record: &record_cell::Sender<Record>) -> (OperationState, Instant) {
    let record = record.borrow();
    (record.info.state, record.info.scheduled_at)
}

/// What a handle asks of the driver.
pub(crate) enum Command {
    /// Cancel the operation; the reply says when the cancellation was carried out.
    Cancel(oneshot::Sender<Result<(), CallError>>),
}

/// The fixed facts of one operation.
///
/// Its names and request id are the operation's key, which the driver shares with the registry
/// and the handles.
pub(crate) struct Spec {
    pub headers: Headers,
    /// What a start request carries besides the headers; boxed, and dropped once the operation
    /// started (no start request follows), so that a started operation keeps none of it.
    pub start: Option<Box<StartBody>>,
    pub cancellation_type: CancellationType,
    /// Shared with the endpoint when the call did not set one.
    pub retry: Arc<RetryPolicy>,
    /// The secret its callback URL carries (see [`CallbackSecret`]); `None` for an operation
    /// recorded before completion secrets, or one of a client that keeps nothing whose endpoint
    /// completes in process.
    pub callback_secret: Option<CallbackSecret>,
    /// The trace context the call inherited from the handler it was made in (see
    /// [`TraceContext::current`]).
    /// Boxed: most calls are not made inside a traced handler.
    pub trace: Option<Box<TraceContext>>,
}

/// The input and links a start request sends.
pub(crate) struct StartBody {
    pub input: Content,
    pub links: Vec<Link>,
}

/// What a driver holds only now and then (see `Driver::backlog`).
#[derive(Default)]
struct Backlog {
    /// Events found in the store, handled at the next wait.
    queued: VecDeque<Event>,
    /// The handles waiting for a requested cancellation to be carried out.
    cancel_waiters: Vec<oneshot::Sender<Result<(), CallError>>>,
}

/// What interrupts a driver while it waits.
enum Event {
    Timeout(TimeoutKind),
    Cancel(Option<oneshot::Sender<Result<(), CallError>>>),
    Abandoned,
    /// The completion was recorded: how the operation ended.
    Completion(Box<Ended>),
    /// The driver must stop: see [`Halt`].
    Halted,
}

/// Either an event, or what the driver was waiting for.
enum Step<T> {
    Event(Event),
    Done(T),
}

/// Where a driver goes on from.
enum Resume {
    /// Attempt to start the operation, from the given time.
    Start(Option<Instant>),
    /// Carry on from there.
    At(Flow),
}

/// Where the start phase left the operation.
enum Flow {
    Started(usize),
    End,
}

/// Why a driver stops driving although it did not end the operation itself.
#[derive(Debug)]
enum Halt {
    /// The operation ended elsewhere (its completion was recorded); handles were shown its record.
    Ended,
    /// Another replica claimed it.
    TakenOver,
    /// Its record is gone from the store.
    Gone,
    /// The client is shutting down.
    Stopped,
}

/// How a driver ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DriverEnd {
    /// The operation ended (or was abandoned, or its record vanished).
    Finished,
    /// Another replica drives it now.
    TakenOver,
}

pub(crate) struct Driver {
    client: Client,
    endpoint: Arc<EndpointState>,
    spec: Spec,
    deadlines: Deadlines,
    id: OperationId,
    key: Arc<OperationKey>,
    record: record_cell::Sender<Record>,
    /// Its handles' commands and its wakes, in one queue.
    inbox: Receiver<Inbound>,
    /// A handle is left (or the registry keeps the operation for new ones).
    commands_open: bool,
    /// No completion was taken yet: once one was, later wakes are dropped.
    wakes_open: bool,
    /// The way to this driver's task, for its in-process callback.
    waker: WeakSender<Inbound>,
    scope_cancel: Option<CancellationToken>,
    /// Events queued and cancel requests waiting for their outcome: rarely any, so boxed and
    /// made when the first comes.
    backlog: Option<Box<Backlog>>,
    cancel_requested: bool,
    /// What the driver keeps of the operation as last written to (or read from) the store (see
    /// [`persist::Kept`]). `None` for a client that keeps nothing: nothing is written (see
    /// `Durability::keeps_nothing`).
    stored: Option<Box<persist::Kept>>,
    halt: Option<Halt>,
    /// The operation in the pending-operations metric (feature `metrics`).
    pending: Pending,
}

impl Driver {
    pub fn new(
        client: Client,
        endpoint: Arc<EndpointState>,
        spec: Spec,
        deadlines: Deadlines,
        stored: CallerRecord,
        local: Local,
        scope_cancel: Option<CancellationToken>,
    ) -> Self {
        let stored = (!client.durability().keeps_nothing()).then(|| persist::Kept::of(&stored));
        let mut pending = Pending::new(&endpoint.name, &local.key.service, &local.key.operation);
        pending.update(|| shown_state(&local.record));
        Self {
            client,
            endpoint,
            spec,
            deadlines,
            id: local.id,
            key: local.key,
            record: local.record,
            inbox: local.inbox,
            commands_open: true,
            wakes_open: true,
            waker: local.waker,
            scope_cancel,
            backlog: None,
            cancel_requested: false,
            stored,
            halt: None,
            pending,
        }
    }

    /// Runs the operation from its stored state to its end, as a task of its own; gives back
    /// the task's channels. (The driver is boxed: a future that took it by value would hold it
    /// twice, as its argument and as its local.)
    // Not an async fn: its future would hold `self` once more, for the operation's whole life.
    ///
    /// It runs inside `span`, its operation's `nexus.call` span, which it finds again as the
    /// current span when it records on it (see [`spans::current_call`]).
    pub fn run(
        self: Box<Self>,
        span: tracing::Span,
    ) -> impl Future<Output = (Local, DriverEnd)> + Send {
        self.run_boxed().in_span(span)
    }

    async fn run_boxed(mut self: Box<Self>) -> (Local, DriverEnd) {
        let flow = match self.resume_point() {
            Resume::At(flow) => flow,
            // A spawned driver lives as long as its operation, mostly waiting for a completion:
            // the start phase's larger state (an attempt in flight) gets an allocation of its
            // own, freed once the operation started, so that a pending operation's task stays
            // small.
            Resume::Start(at) => Box::pin(self.start_phase(at)).await,
        };
        self.finish(flow).await;
        (*self).end()
    }

    /// Runs the operation from its stored state to its end on the calling task (an awaited
    /// call); gives back the channels.
    /// (Its caller instruments it with the operation's `nexus.call` span: wrapped here, the
    /// future would hold the driver twice.)
    pub async fn run_inline(mut self) -> (Local, DriverEnd) {
        let flow = match self.resume_point() {
            Resume::At(flow) => flow,
            Resume::Start(at) => self.start_phase(at).await,
        };
        self.finish(flow).await;
        self.end()
    }

    /// The backlog, made if there is none.
    fn backlog(&mut self) -> &mut Backlog {
        self.backlog.get_or_insert_with(Box::default)
    }

    /// The handles waiting for the cancellation's outcome, taken to be answered.
    fn take_cancel_waiters(&mut self) -> Vec<oneshot::Sender<Result<(), CallError>>> {
        self.backlog
            .as_mut()
            .map(|backlog| std::mem::take(&mut backlog.cancel_waiters))
            .unwrap_or_default()
    }

    /// Where the stored record says to go on from.
    fn resume_point(&mut self) -> Resume {
        let Some(stored) = self.stored.as_deref() else {
            // A new operation of a client that keeps nothing.
            return Resume::Start(None);
        };
        let state = stored.state;
        if stored.cancel_requested_at.is_some() {
            // Requested before a restart, or from another replica: carry it out again.
            self.backlog().queued.push_back(Event::Cancel(None));
        }
        match state {
            store::OperationState::Started => {
                Resume::At(Flow::Started(self.record.borrow().info.target.unwrap_or(0)))
            }
            state if state.is_terminal() => Resume::At(Flow::End),
            // The shown record says when, as the stored one does (it was shown from it).
            store::OperationState::BackingOff => {
                Resume::Start(self.record.borrow().info.next_attempt_at)
            }
            _ => Resume::Start(None),
        }
    }

    /// Runs what follows the start phase. (It borrows the driver: a future that took it by
    /// value would hold a second copy of it.)
    async fn finish(&mut self, flow: Flow) {
        if let Flow::Started(target) = flow {
            self.started_phase(target).await;
        }
        for waiter in self.take_cancel_waiters() {
            let _ = waiter.send(Ok(()));
        }
        let state = self.record.borrow().info.state.as_str();
        spans::record(&spans::current_call(), "nexus.state", state);
        tracing::debug!(
            endpoint = %self.endpoint.name,
            operation = %self.key.operation,
            request_id = %self.key.request_id,
            state,
            halt = ?self.halt,
            "operation driver finished"
        );
    }

    /// How the driver ended, and the channels back.
    fn end(self) -> (Local, DriverEnd) {
        let end = match self.halt {
            Some(Halt::TakenOver) => DriverEnd::TakenOver,
            _ => DriverEnd::Finished,
        };
        let local = Local {
            id: self.id,
            key: self.key,
            record: self.record,
            inbox: self.inbox,
            waker: self.waker,
        };
        (local, end)
    }

    fn is_resolved(&self) -> bool {
        self.record.borrow().outcome.is_some()
    }

    /// Ends the operation with `outcome` unless it already has one.
    async fn resolve(&mut self, outcome: Outcome, state: OperationState) {
        self.publish(|record| {
            if record.outcome.is_none() {
                record.outcome = Some(Box::new(outcome));
                record.info.set_state(state);
                record.info.next_attempt_at = None;
                record.info.closed_at = Some(Instant::now());
            }
        })
        .await;
    }

    async fn fail(&mut self, error: CallError) {
        let state = match &error {
            CallError::Operation(e) if e.state == OperationErrorState::Canceled => {
                OperationState::Canceled
            }
            CallError::Timeout { .. } => OperationState::TimedOut,
            _ => OperationState::Failed,
        };
        self.resolve(Err(error), state).await;
    }

    async fn time_out(&mut self, kind: TimeoutKind) {
        let last_failure = self.record.borrow().info.last_failure.clone();
        tracing::debug!(operation = %self.key.operation, %kind, "operation timed out");
        self.resolve(
            Err(CallError::Timeout { kind, last_failure }),
            OperationState::TimedOut,
        )
        .await;
        // A cancel request still under way is not sent again.
        self.publish(|record| {
            if let Some(c) = record.info.cancellation.as_mut() {
                c.end_with_operation();
            }
        })
        .await;
    }

    /// Ends the operation as canceled by the caller; `cancel` says what became of the request.
    async fn resolve_canceled(&mut self, cancel: Option<CancelState>) {
        if let Some(state) = cancel {
            self.set_cancel_state(state).await;
        }
        self.resolve(Err(CallError::Canceled), OperationState::Canceled)
            .await;
        for waiter in self.take_cancel_waiters() {
            let _ = waiter.send(Ok(()));
        }
    }

    /// Records that the caller asked for cancellation.
    async fn note_cancel_request(
        &mut self,
        waiter: Option<oneshot::Sender<Result<(), CallError>>>,
    ) {
        if let Some(waiter) = waiter {
            self.backlog().cancel_waiters.push(waiter);
        }
        if !self.cancel_requested {
            self.cancel_requested = true;
            self.publish(|record| {
                let requested_at = record
                    .info
                    .cancellation
                    .as_ref()
                    .map_or_else(Instant::now, |c| c.requested_at);
                record.info.cancellation = Some(Box::new(CancellationInfo::new(
                    requested_at,
                    CancelState::Scheduled,
                )));
            })
            .await;
        }
    }

    async fn set_cancel_state(&mut self, state: CancelState) {
        self.publish(|record| {
            if let Some(cancellation) = record.info.cancellation.as_mut() {
                cancellation.set_state(state);
                cancellation.next_attempt_at = None;
            }
        })
        .await;
    }

    /// Ends the operation with the completion a receiver recorded.
    fn complete(&mut self, end: Ended) {
        self.completions_done();
        self.adopt_final(end);
        for waiter in self.take_cancel_waiters() {
            let _ = waiter.send(Ok(()));
        }
    }

    fn completions_done(&mut self) {
        self.wakes_open = false;
    }

    /// Handles an event while no attempt is in flight and the operation has not started.
    async fn on_idle_event(&mut self, event: Event) -> Flow {
        match event {
            Event::Timeout(kind) => self.time_out(kind).await,
            Event::Abandoned => self.abandon().await,
            Event::Completion(stored) => self.complete(*stored),
            Event::Cancel(waiter) => {
                self.note_cancel_request(waiter).await;
                self.resolve_canceled(Some(CancelState::NotSent)).await;
            }
            Event::Halted => {}
        }
        Flow::End
    }

    /// Every handle was dropped (only without a configured store): the operation is abandoned,
    /// recorded as canceled so a late completion is refused and the record expires.
    async fn abandon(&mut self) {
        tracing::debug!(
            operation = %self.key.operation,
            request_id = %self.key.request_id,
            "every handle was dropped: abandoning the operation"
        );
        self.resolve(Err(CallError::Canceled), OperationState::Canceled)
            .await;
    }
}
