//! Handles to scheduled operations.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use super::record_cell;

use super::driver::{Command, Outcome, Record};
use super::info::{OperationInfo, OperationState};
use super::key::OperationKey;
use super::pending::{Attached, Inbound};
use super::queue::Sender;
use crate::codec::details::decode_details;
use crate::codec::{self, PayloadCodec};
use crate::error::CallError;
use crate::link::Link;
use crate::operation::Operation;
use crate::store::OperationId;

/// A scheduled operation: its state while pending, its token once started, its result when it
/// comes, and a way to cancel it.
///
/// A task (the operation's *driver*) runs the operation in the background: attempts, backoff,
/// breaker, timeouts, cancellation. The handle observes it.
///
/// Cloning a handle is cheap; all clones see the same operation. Without a configured store,
/// **dropping every handle** (or the future awaiting the call) *abandons* the operation, as
/// Temporal does for a terminated caller: no cancel request is sent, attempts stop, a started
/// operation keeps running on the handler and its completion is refused (NOT_FOUND). A
/// cancellation requested before the drop is still carried out. With a store
/// ([`ClientBuilder::store`](crate::client::ClientBuilder::store)) operations are durable and run
/// to their end without handles; [`Client::attach`](crate::Client::attach) gives a new handle from
/// the [`operation_id`](Self::operation_id). Call [`cancel`](Self::cancel) to stop an operation.
pub struct OperationHandle<Op: Operation> {
    shared: Arc<Shared>,
    _op: PhantomData<fn() -> Op>,
}

impl<Op: Operation> Clone for OperationHandle<Op> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _op: PhantomData,
        }
    }
}

pub(crate) struct Shared {
    pub key: Arc<OperationKey>,
    pub record: record_cell::Receiver<Record>,
    pub commands: Sender<Inbound>,
    pub token: OnceLock<Option<String>>,
    pub start_links: OnceLock<Vec<Link>>,
    /// The client's payload codec, which decodes the result.
    pub codec: Option<Arc<dyn PayloadCodec>>,
}

impl<Op: Operation> fmt::Debug for OperationHandle<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        f.debug_struct("OperationHandle")
            .field("id", &self.operation_id())
            .field("endpoint", &self.shared.key.endpoint)
            .field("service", &self.shared.key.service)
            .field("operation", &self.shared.key.operation)
            .field("request_id", &self.shared.key.request_id)
            .field("state", &info.state)
            .field("token", &info.token)
            .finish_non_exhaustive()
    }
}

/// The result of `Op` from its driver's outcome (`None`: the driver stopped without one).
///
/// With [`decode_error`], the one place results (sync, or an async operation's completion, as
/// recorded) go through the client's payload codec.
pub(crate) fn decode_outcome<Op: Operation>(
    outcome: Option<Outcome>,
    payload_codec: Option<&Arc<dyn PayloadCodec>>,
) -> Result<Op::Output, CallError> {
    let mut content = match outcome {
        Some(Ok(content)) => content,
        Some(Err(error)) => return Err(decode_error::<Op>(error, payload_codec)),
        None => return Err(CallError::Invalid("the operation's driver stopped".into())),
    };
    let cannot_decode =
        |e| CallError::Codec(format!("cannot decode the output of `{}`: {e}", Op::NAME));
    if let Some(payload_codec) = payload_codec {
        content = payload_codec.decode(content).map_err(cannot_decode)?;
    }
    codec::decode::<Op::Output>(&content).map_err(cannot_decode)
}

/// An operation's error with its failure details decoded by the client's payload codec (the
/// handler's encoded them); details that do not decode are a [`CallError::Codec`] quoting the
/// error.
pub(crate) fn decode_error<Op: Operation>(
    error: CallError,
    payload_codec: Option<&Arc<dyn PayloadCodec>>,
) -> CallError {
    match (error, payload_codec) {
        (CallError::Operation(mut error), Some(payload_codec)) => {
            match decode_details(payload_codec.as_ref(), &mut error) {
                Ok(()) => CallError::Operation(error),
                Err(e) => CallError::Codec(format!(
                    "cannot decode the failure details of `{}` ({}: {}): {e}",
                    Op::NAME,
                    error.state.as_str(),
                    error.message
                )),
            }
        }
        (error, _) => error,
    }
}

impl<Op: Operation> OperationHandle<Op> {
    pub(crate) fn from_attached(
        attached: Attached,
        payload_codec: Option<&Arc<dyn PayloadCodec>>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                key: attached.key,
                record: attached.record,
                commands: attached.commands,
                token: OnceLock::new(),
                start_links: OnceLock::new(),
                codec: payload_codec.cloned(),
            }),
            _op: PhantomData,
        }
    }

    /// The operation's id: keep it to [`attach`](crate::Client::attach) to the operation again,
    /// after a restart or from another replica. It is also the callback id of its completion.
    ///
    /// When the call gave a request id an earlier operation was recorded with, this handle follows
    /// that operation, and its id becomes the earlier one's once the store answered (when
    /// [`Call::start`](crate::Call::start) returns, or once [`info`](Self::info) shows an
    /// attempt or a later state).
    pub fn operation_id(&self) -> OperationId {
        self.shared.record.borrow().id
    }

    /// A snapshot of the operation: state, attempts, last failure, next attempt time, token...
    pub fn info(&self) -> OperationInfo {
        self.shared.record.borrow().info.clone()
    }

    /// The state of the operation.
    pub fn state(&self) -> OperationState {
        self.shared.record.borrow().info.state
    }

    /// Waits until `condition` holds for the operation's info (checked at every transition) and
    /// returns that info; returns the last info if the operation's driver stopped first.
    pub async fn wait_for(
        &self,
        mut condition: impl FnMut(&OperationInfo) -> bool,
    ) -> OperationInfo {
        let mut rx = self.shared.record.clone();
        match rx.wait_for(|record| condition(&record.info)).await {
            Ok(record) => record.info.clone(),
            Err(_) => self.info(),
        }
    }

    /// Waits until the operation started (its token is known), answered synchronously, or ended.
    /// Returns the error of an operation that ended without starting.
    pub async fn wait_started(&self) -> Result<(), CallError> {
        let info = self.wait_for(|info| info.state.is_started_or_done()).await;
        match info.state {
            OperationState::Started | OperationState::Succeeded => Ok(()),
            // It started (the handler gave it a token) and already ended: its outcome is the
            // result's, not the start's (a fast failing workflow's completion may overtake
            // the start answer's way to this handle).
            _ if info.token.is_some() => Ok(()),
            _ => match self.shared.record.borrow().cloned_outcome() {
                Some(Err(e)) => Err(decode_error::<Op>(e, self.shared.codec.as_ref())),
                Some(Ok(_)) => Ok(()),
                None => Err(CallError::Invalid("the operation's driver stopped".into())),
            },
        }
    }

    /// The operation token, once the handler started the operation asynchronously; `None` while
    /// it has not started, or when it answered synchronously.
    pub fn token(&self) -> Option<&str> {
        if let Some(token) = self.shared.token.get() {
            return token.as_deref();
        }
        let (token, settled) = {
            let record = self.shared.record.borrow();
            let settled = record.info.token.is_some() || record.info.state.is_terminal();
            (record.info.token.clone(), settled)
        };
        if settled {
            self.shared.token.get_or_init(|| token).as_deref()
        } else {
            None
        }
    }

    /// The request id the operation is started with (the same on every attempt).
    pub fn request_id(&self) -> &str {
        &self.shared.key.request_id
    }

    /// The endpoint the operation runs on.
    pub fn endpoint(&self) -> &str {
        &self.shared.key.endpoint
    }

    /// Whether the handler answered synchronously (the result is already here).
    pub fn is_sync(&self) -> bool {
        let record = self.shared.record.borrow();
        record.info.state == OperationState::Succeeded && record.info.token.is_none()
    }

    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        self.shared.record.borrow().outcome.is_some()
    }

    /// Links the handler returned with the start response (empty until started).
    pub fn start_links(&self) -> &[Link] {
        if let Some(links) = self.shared.start_links.get() {
            return links;
        }
        let record = self.shared.record.borrow();
        if record.info.state.is_started_or_done() {
            let links = record.info.start_links.clone();
            drop(record);
            self.shared.start_links.get_or_init(|| links)
        } else {
            &[]
        }
    }

    /// Links the handler sent with the completion, once it arrived.
    pub fn completion_links(&self) -> Vec<Link> {
        self.shared.record.borrow().info.completion_links.clone()
    }

    /// Waits for the result: at once for a sync operation, at the completion of an async one, or
    /// when the operation fails, times out ([`CallError::Timeout`] names which timeout) or is
    /// canceled.
    pub async fn result(&self) -> Result<Op::Output, CallError> {
        let mut rx = self.shared.record.clone();
        let outcome = match rx.wait_for(|record| record.outcome.is_some()).await {
            Ok(record) => record.cloned_outcome(),
            Err(_) => self.shared.record.borrow().cloned_outcome(),
        };
        decode_outcome::<Op>(outcome, self.shared.codec.as_ref())
    }

    /// Cancels the operation.
    ///
    /// An operation that has not started yet is stopped from starting and ends as canceled. For a
    /// started one, according to its [`CancellationType`](crate::CancellationType):
    /// - `Abandon`: no request is sent; waiting callers get [`CallError::Canceled`] at once.
    /// - `TryCancel`: a cancel request is sent (and retried) in the background; waiting callers
    ///   get [`CallError::Canceled`] at once.
    /// - `WaitRequested`: returns once the handler acknowledged the request; waiting callers then
    ///   get [`CallError::Canceled`].
    /// - `WaitCompleted` (default): returns once the handler acknowledged the request; waiting
    ///   callers keep waiting for the operation's completion (usually a canceled
    ///   [`OperationError`](crate::OperationError)).
    ///
    /// Returns the cancel request's error if it failed with a non-retryable error (such as
    /// NOT_FOUND when the operation already ended) or ran out of attempts; canceling an operation
    /// that already ended does nothing.
    ///
    /// The request is recorded in the store: a process resuming the operation after a restart
    /// carries it out. For an operation another replica drives, this returns once the request is
    /// recorded; that replica carries it out.
    pub async fn cancel(&self) -> Result<(), CallError> {
        if self.is_done() {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Inbound::Command(Command::Cancel(reply)))
            .is_err()
        {
            return Ok(());
        }
        done.await.unwrap_or(Ok(()))
    }
}
