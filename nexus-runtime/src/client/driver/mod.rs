//! The operation driver: one task per operation runs its state machine, from scheduling to its
//! end, and publishes every transition on a watch channel that handles observe.
//!
//! ```text
//! Scheduled -> (breaker: Blocked while open) -> (limits: queued) -> attempt
//!   -> Succeeded (sync result) | Started (async token) | BackingOff (retryable) -> Scheduled ...
//!   -> Failed (non-retryable) | TimedOut | Canceled
//! Started -> Succeeded | Failed | Canceled (completion) | TimedOut | Canceled (by the caller)
//! ```
//!
//! Every transition goes through [`Driver::publish`]: that is the seam where a durable store will
//! record the operation (see `store` in the design).
//!
//! The driver ends when the operation ends, when every handle is dropped without a cancellation
//! (the operation is *abandoned*: no cancel request is sent, as Temporal does for a terminated
//! caller), or once a requested cancellation has been carried out.
//!
//! A driver runs either as its own task ([`Driver::run`], for operations that have handles) or
//! inline in the future of an awaited call ([`Driver::run_inline`]): that future is the only
//! observer, so there is no task to spawn and no handle to wake, and dropping it abandons the
//! operation exactly as dropping every handle does. Both run the same state machine.

mod cancel;
mod commands;
mod start;
mod started;

pub(crate) use commands::{CommandReceiver, CommandSender, channel as command_channel};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::info::{CancelState, CancellationInfo, OperationInfo, OperationState};
use super::pending::Registration;
use super::{CancellationType, Client, EndpointState};
use crate::codec::Content;
use crate::completion::Completion;
use crate::error::{CallError, OperationErrorState, TimeoutKind};
use crate::link::Link;
use crate::machinery::{Deadlines, RetryPolicy};
use crate::operation::Headers;

/// The result a handle waits for.
pub(crate) type Outcome = Result<Content, CallError>;

/// What the driver publishes: the operation's info, and its outcome once known.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub info: OperationInfo,
    pub outcome: Option<Outcome>,
    pub start_links: Vec<Link>,
    pub completion_links: Vec<Link>,
}

impl Record {
    pub fn new(scheduled_at: Instant) -> Self {
        Self {
            info: OperationInfo::new(scheduled_at),
            outcome: None,
            start_links: Vec::new(),
            completion_links: Vec::new(),
        }
    }
}

/// What a handle asks of the driver.
pub(crate) enum Command {
    /// Cancel the operation; the reply says when the cancellation was carried out.
    Cancel(oneshot::Sender<Result<(), CallError>>),
}

/// The fixed facts of one operation.
pub(crate) struct Spec {
    pub service: &'static str,
    pub operation: &'static str,
    pub request_id: String,
    pub headers: Headers,
    pub links: Vec<Link>,
    pub input: Content,
    pub cancellation_type: CancellationType,
    pub retry: RetryPolicy,
}

/// The channels of a new driver.
pub(crate) struct Channels {
    pub record: watch::Sender<Record>,
    /// Commands from handles; `None` for a driver run inline, which has no handles.
    pub commands: Option<CommandReceiver>,
    pub completions: oneshot::Receiver<Completion>,
    pub registration: Registration,
}

/// What interrupts a driver while it waits.
enum Event {
    Timeout(TimeoutKind),
    Cancel(Option<oneshot::Sender<Result<(), CallError>>>),
    Abandoned,
    Completion(Completion),
}

/// Either an event, or what the driver was waiting for.
enum Step<T> {
    Event(Event),
    Done(T),
}

/// Where the start phase left the operation.
enum Flow {
    Started(usize),
    End,
}

pub(crate) struct Driver {
    client: Client,
    endpoint: Arc<EndpointState>,
    spec: Spec,
    deadlines: Deadlines,
    record: Arc<watch::Sender<Record>>,
    commands: Option<CommandReceiver>,
    commands_open: bool,
    completions: oneshot::Receiver<Completion>,
    completions_open: bool,
    registration: Registration,
    scope_cancel: Option<CancellationToken>,
    cancel_waiters: Vec<oneshot::Sender<Result<(), CallError>>>,
    cancel_requested: bool,
}

impl Driver {
    pub fn new(
        client: Client,
        endpoint: Arc<EndpointState>,
        spec: Spec,
        deadlines: Deadlines,
        channels: Channels,
        scope_cancel: Option<CancellationToken>,
    ) -> Self {
        Self {
            client,
            endpoint,
            spec,
            deadlines,
            record: Arc::new(channels.record),
            commands: channels.commands,
            commands_open: true,
            completions: channels.completions,
            completions_open: true,
            registration: channels.registration,
            scope_cancel,
            cancel_waiters: Vec::new(),
            cancel_requested: false,
        }
    }

    /// Runs the operation to its end (as a task of its own, observed through handles).
    pub async fn run(mut self) {
        // A spawned driver lives as long as its operation, mostly waiting for a completion; the
        // start phase's larger state (an attempt in flight) gets an allocation of its own, freed
        // once the operation started, so that the task of a pending operation stays small.
        let flow = Box::pin(self.start_phase()).await;
        self.finish(flow).await;
    }

    /// Runs the operation to its end on the calling task and returns its outcome (`None` if it
    /// was abandoned, which cannot happen without handles). Dropping this future abandons the
    /// operation.
    pub async fn run_inline(mut self) -> Option<Outcome> {
        let flow = self.start_phase().await;
        self.finish(flow).await;
        // Nobody else observes the record: take the outcome instead of cloning it.
        let mut outcome = None;
        self.record.send_if_modified(|record| {
            outcome = record.outcome.take();
            false
        });
        outcome
    }

    /// Runs what follows the start phase.
    async fn finish(&mut self, flow: Flow) {
        if let Flow::Started(target) = flow {
            self.started_phase(target).await;
        }
        for waiter in self.cancel_waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
        tracing::debug!(
            endpoint = %self.endpoint.name,
            operation = self.spec.operation,
            request_id = %self.spec.request_id,
            state = ?self.record.borrow().info.state,
            "operation driver finished"
        );
    }

    /// Applies a transition and tells the handles. The persistence seam: a durable store records
    /// the operation here, before anyone observes the new state.
    fn publish(&self, change: impl FnOnce(&mut Record)) {
        if self.record.receiver_count() == 0 {
            // No handle observes the operation (an awaited call has none, and receivers are only
            // made from other receivers): apply the change without waking anyone, which spares
            // the watch channel's eight notifier locks per transition.
            self.record.send_if_modified(|record| {
                change(record);
                false
            });
        } else {
            self.record.send_modify(change);
        }
    }

    fn is_resolved(&self) -> bool {
        self.record.borrow().outcome.is_some()
    }

    /// Ends the operation with `outcome` unless it already has one.
    fn resolve(&self, outcome: Outcome, state: OperationState) {
        self.publish(|record| {
            if record.outcome.is_none() {
                record.outcome = Some(outcome);
                record.info.state = state;
                record.info.next_attempt_at = None;
                record.info.closed_at = Some(Instant::now());
            }
        });
    }

    fn fail(&self, error: CallError) {
        let state = match &error {
            CallError::Operation(e) if e.state == OperationErrorState::Canceled => {
                OperationState::Canceled
            }
            CallError::Timeout { .. } => OperationState::TimedOut,
            _ => OperationState::Failed,
        };
        self.resolve(Err(error), state);
    }

    fn time_out(&self, kind: TimeoutKind) {
        let last_failure = self.record.borrow().info.last_failure.clone().map(Box::new);
        tracing::debug!(operation = self.spec.operation, %kind, "operation timed out");
        self.resolve(
            Err(CallError::Timeout { kind, last_failure }),
            OperationState::TimedOut,
        );
    }

    /// Ends the operation as canceled by the caller; `cancel` says what became of the request.
    fn resolve_canceled(&mut self, cancel: Option<CancelState>) {
        if let Some(state) = cancel {
            self.set_cancel_state(state);
        }
        self.resolve(Err(CallError::Canceled), OperationState::Canceled);
        for waiter in self.cancel_waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
    }

    /// Records that the caller asked for cancellation.
    fn note_cancel_request(&mut self, waiter: Option<oneshot::Sender<Result<(), CallError>>>) {
        self.cancel_waiters.extend(waiter);
        if !self.cancel_requested {
            self.cancel_requested = true;
            self.publish(|record| {
                record.info.cancellation = Some(CancellationInfo {
                    requested_at: Instant::now(),
                    state: CancelState::Scheduled,
                    attempt: 0,
                    last_failure: None,
                    next_attempt_at: None,
                });
            });
        }
    }

    fn set_cancel_state(&self, state: CancelState) {
        self.publish(|record| {
            if let Some(cancellation) = record.info.cancellation.as_mut() {
                cancellation.state = state;
                cancellation.next_attempt_at = None;
            }
        });
    }

    /// Ends the operation with the completion the handler sent.
    fn complete(&mut self, completion: Completion) {
        self.completions_open = false;
        self.publish(|record| {
            if record.outcome.is_none() {
                record.completion_links = completion.links;
            }
        });
        match completion.outcome {
            Ok(content) => self.resolve(Ok(content), OperationState::Succeeded),
            Err(e) => self.fail(CallError::Operation(e)),
        }
        for waiter in self.cancel_waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
    }

    /// Waits for `future`, or for whatever interrupts the operation first: a timeout, a
    /// cancellation (by a handle or the enclosing handler's scope), every handle dropped, or the
    /// completion. On a tie the timeout wins, then cancellation.
    async fn race<F: Future + ?Sized>(&mut self, mut future: Pin<&mut F>) -> Step<F::Output> {
        enum Raw<T> {
            Timeout(TimeoutKind),
            Scope,
            Command(Option<Command>),
            Completion(Option<Completion>),
            Done(T),
        }
        loop {
            // The timer and the scope's signal are boxed, and only when there is one: inline
            // they would add a few hundred bytes to the task of every pending operation.
            let mut timer = self
                .deadlines
                .next()
                .map(|(at, kind)| (Box::pin(tokio::time::sleep_until(at)), kind));
            let timeout = async {
                match timer.as_mut() {
                    Some((sleep, kind)) => {
                        sleep.as_mut().await;
                        *kind
                    }
                    None => std::future::pending().await,
                }
            };
            let mut cancelled = self
                .scope_cancel
                .clone()
                .map(|token| Box::pin(token.cancelled_owned()));
            let scope = async {
                match cancelled.as_mut() {
                    Some(cancelled) => cancelled.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let raw = tokio::select! {
                biased;
                kind = timeout => Raw::Timeout(kind),
                () = scope => Raw::Scope,
                command = next_command(&mut self.commands), if self.commands_open => {
                    Raw::Command(command)
                }
                completion = &mut self.completions, if self.completions_open => {
                    Raw::Completion(completion.ok())
                }
                out = future.as_mut() => Raw::Done(out),
            };
            return match raw {
                Raw::Timeout(kind) => Step::Event(Event::Timeout(kind)),
                Raw::Scope => {
                    self.scope_cancel = None;
                    tracing::debug!(
                        operation = self.spec.operation,
                        "the enclosing operation was canceled; canceling this call"
                    );
                    Step::Event(Event::Cancel(None))
                }
                Raw::Command(Some(Command::Cancel(reply))) => {
                    Step::Event(Event::Cancel(Some(reply)))
                }
                Raw::Command(None) => {
                    self.commands_open = false;
                    Step::Event(Event::Abandoned)
                }
                Raw::Completion(Some(completion)) => Step::Event(Event::Completion(completion)),
                Raw::Completion(None) => {
                    self.completions_open = false;
                    continue;
                }
                Raw::Done(out) => Step::Done(out),
            };
        }
    }

    /// Handles an event while no attempt is in flight and the operation has not started.
    fn on_idle_event(&mut self, event: Event) -> Flow {
        match event {
            Event::Timeout(kind) => self.time_out(kind),
            Event::Abandoned => self.abandon(),
            Event::Completion(completion) => self.complete(completion),
            Event::Cancel(waiter) => {
                self.note_cancel_request(waiter);
                self.resolve_canceled(Some(CancelState::NotSent));
            }
        }
        Flow::End
    }

    fn abandon(&self) {
        tracing::debug!(
            operation = self.spec.operation,
            request_id = %self.spec.request_id,
            "every handle was dropped: abandoning the operation"
        );
    }
}

impl Drop for Driver {
    /// Forgets the operation's callback, whether the driver ended or the future running it inline
    /// was dropped: a completion arriving later is refused (NOT_FOUND).
    fn drop(&mut self) {
        self.client.pending().release(&self.registration);
    }
}

/// The next command from the handles; never, for a driver run inline (it has no handles).
async fn next_command(commands: &mut Option<CommandReceiver>) -> Option<Command> {
    match commands {
        Some(commands) => commands.recv().await,
        None => std::future::pending().await,
    }
}
