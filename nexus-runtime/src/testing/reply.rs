//! How a [`MockService`](super::MockService) answers a start: [`Reply`], and the async starts
//! the test completes itself ([`Started`], [`StartedOperation`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{OperationError, StartError};
use crate::operation::{AsyncContext, Headers, Operation, OperationContext, OperationResult};

/// How a mocked operation answers one start request.
///
/// ```
/// use nexus_runtime::testing::Reply;
/// use nexus_runtime::{HandlerError, OperationError};
///
/// let sync: Reply<u32> = Reply::value(7);                              // 200 with the value
/// let refused: Reply<u32> = Reply::error(HandlerError::unavailable("down")); // retried by callers
/// let failed: Reply<u32> = Reply::error(OperationError::failed("no"));  // 424, never retried
/// let later: Reply<u32> = Reply::completed(Ok(7));   // a token now, the completion right after
/// let held: Reply<u32> = Reply::pending();           // a token now, the outcome when the test says
/// # let _ = (sync, refused, failed, later, held);
/// ```
pub struct Reply<O>(Kind<O>);

enum Kind<O> {
    Value(O),
    Error(StartError),
    Completed(Result<O, OperationError>),
    Pending,
}

impl<O> fmt::Debug for Reply<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Value(_) => f.write_str("Reply::value(..)"),
            Kind::Error(e) => f.debug_tuple("Reply::error").field(e).finish(),
            Kind::Completed(Ok(_)) => f.write_str("Reply::completed(Ok(..))"),
            Kind::Completed(Err(e)) => f.debug_tuple("Reply::completed").field(e).finish(),
            Kind::Pending => f.write_str("Reply::pending()"),
        }
    }
}

impl<O: Send + 'static> Reply<O> {
    /// Answers synchronously with `value`.
    pub fn value(value: O) -> Self {
        Self(Kind::Value(value))
    }

    /// Does not start: a [`HandlerError`](crate::HandlerError) (the request failed; retried by
    /// callers when it is retryable) or an [`OperationError`] (the operation failed or was
    /// canceled at once).
    pub fn error(error: impl Into<StartError>) -> Self {
        Self(Kind::Error(error.into()))
    }

    /// Answers asynchronously (the caller gets a token), and completes the operation at once
    /// with `outcome`: a value, or a failed or canceled [`OperationError`].
    pub fn completed(outcome: Result<O, OperationError>) -> Self {
        Self(Kind::Completed(outcome))
    }

    /// Answers asynchronously, and leaves the outcome to the test: the start is handed, as a
    /// [`StartedOperation`], to [`MockService::started`](super::MockService::started), whose
    /// holder completes, fails or cancels it when it chooses.
    pub fn pending() -> Self {
        Self(Kind::Pending)
    }
}

impl<O: Send + 'static> Reply<O> {
    /// The operation method's answer for this reply; `input` and `queue` serve a pending reply.
    pub(super) fn answer<Op>(
        self,
        ctx: &OperationContext,
        input: Op::Input,
        queue: Arc<StartQueue<Op>>,
    ) -> OperationResult<O>
    where
        Op: Operation<Output = O>,
    {
        match self.0 {
            Kind::Value(value) => Ok(value.into()),
            Kind::Error(error) => Err(error),
            Kind::Completed(outcome) => ctx.start_async(move |_| async move { outcome }),
            Kind::Pending => ctx.start_async(move |work| async move {
                let (outcome, receive) = oneshot::channel();
                let started = StartedOperation::<Op> {
                    input,
                    work,
                    outcome: Some(outcome),
                };
                if queue.sender.send(started).is_err() {
                    return Err(OperationError::failed("the mock service is gone"));
                }
                receive.await.unwrap_or_else(|_| {
                    Err(OperationError::failed(format!(
                        "the test dropped the started `{}` operation without completing it",
                        Op::NAME
                    )))
                })
            }),
        }
    }
}

/// The async starts of one operation that wait for the test to decide their outcome.
pub(super) struct StartQueue<Op: Operation> {
    sender: mpsc::UnboundedSender<StartedOperation<Op>>,
    receiver: Mutex<mpsc::UnboundedReceiver<StartedOperation<Op>>>,
}

impl<Op: Operation> StartQueue<Op> {
    pub(super) fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Mutex::new(receiver),
        }
    }
}

/// The operations of type `Op` that a mock answered with [`Reply::pending`], in the order they
/// started. Get it from [`MockService::started`](super::MockService::started).
pub struct Started<Op: Operation> {
    pub(super) queue: Arc<StartQueue<Op>>,
    pub(super) _op: PhantomData<Op>,
}

impl<Op: Operation> fmt::Debug for Started<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("operation", &Op::NAME)
            .finish()
    }
}

impl<Op: Operation> Clone for Started<Op> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            _op: PhantomData,
        }
    }
}

impl<Op: Operation> Started<Op> {
    /// The next operation started, waiting for it if none has started yet. (It waits for as
    /// long as it takes: wrap it in `tokio::time::timeout` where a start might never come.)
    pub async fn next(&self) -> StartedOperation<Op> {
        let mut receiver = self.queue.receiver.lock().await;
        match receiver.recv().await {
            Some(started) => started,
            // The queue holds its own sender, so it is never closed: no start will come.
            None => std::future::pending().await,
        }
    }

    /// The next operation started, if one has started and was not taken yet.
    pub fn try_next(&self) -> Option<StartedOperation<Op>> {
        self.queue.receiver.try_lock().ok()?.try_recv().ok()
    }
}

/// An async operation of a mock, started and waiting for the test to decide its outcome.
///
/// Dropping it without deciding completes the operation as failed, with a message saying so.
pub struct StartedOperation<Op: Operation> {
    input: Op::Input,
    work: AsyncContext,
    outcome: Option<oneshot::Sender<Result<Op::Output, OperationError>>>,
}

impl<Op: Operation> fmt::Debug for StartedOperation<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartedOperation")
            .field("operation", &Op::NAME)
            .field("token", &self.work.token())
            .field("request_id", &self.work.request_id())
            .field("cancel_requested", &self.work.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl<Op: Operation> StartedOperation<Op> {
    /// The input it was started with.
    pub fn input(&self) -> &Op::Input {
        &self.input
    }

    /// The operation token the caller holds.
    pub fn token(&self) -> &str {
        self.work.token()
    }

    /// The request id of its start request.
    pub fn request_id(&self) -> &str {
        self.work.request_id()
    }

    /// The headers of its start request.
    pub fn headers(&self) -> &Headers {
        self.work.headers()
    }

    /// Resolves when the caller requests its cancellation. The operation goes on until the test
    /// decides its outcome (a real handler may also finish its work regardless).
    pub async fn cancel_requested(&self) {
        self.work.cancelled().await;
    }

    /// Whether the caller requested its cancellation.
    pub fn is_cancel_requested(&self) -> bool {
        self.work.is_cancelled()
    }

    /// Completes it successfully with `output`.
    pub fn complete(self, output: Op::Output) {
        self.finish(Ok(output));
    }

    /// Completes it as failed.
    pub fn fail(self, message: impl Into<String>) {
        self.finish(Err(OperationError::failed(message)));
    }

    /// Completes it as canceled.
    pub fn cancel(self, message: impl Into<String>) {
        self.finish(Err(OperationError::canceled(message)));
    }

    /// Completes it with `outcome` (an [`OperationError`] may carry details and a cause).
    pub fn finish(mut self, outcome: Result<Op::Output, OperationError>) {
        if let Some(sender) = self.outcome.take() {
            // The work is gone only if the dispatcher was shut down: nothing to complete then.
            let _ = sender.send(outcome);
        }
    }
}
