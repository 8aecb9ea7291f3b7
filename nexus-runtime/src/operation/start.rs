//! What a handler answers to a start request.

use std::fmt;

use futures::future::BoxFuture;

use super::context::AsyncContext;
use crate::error::{OperationError, StartError};

/// What an operation method returns: a sync value, an async start, or why it did not start.
///
/// `?` converts both [`HandlerError`](crate::HandlerError) and
/// [`OperationError`](crate::OperationError); a value becomes a sync answer with `.into()`.
pub type OperationResult<O> = Result<OperationStart<O>, StartError>;

/// How a handler answers a start request, chosen per call.
pub enum OperationStart<O> {
    /// The result, in the same round trip (HTTP 200).
    Sync(O),
    /// The operation continues in the background; the caller gets a token (HTTP 201) and the
    /// result later, by callback.
    Async(AsyncOperation<O>),
}

impl<O> From<O> for OperationStart<O> {
    fn from(value: O) -> Self {
        Self::Sync(value)
    }
}

impl<O> fmt::Debug for OperationStart<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sync(_) => f.write_str("OperationStart::Sync(..)"),
            Self::Async(op) => f.debug_tuple("OperationStart::Async").field(op).finish(),
        }
    }
}

type Work<O> =
    Box<dyn FnOnce(AsyncContext) -> BoxFuture<'static, Result<O, OperationError>> + Send>;

/// The background work of an async operation, run by the runtime after it answered the caller.
///
/// Usually made with [`OperationContext::start_async`](crate::OperationContext::start_async), or
/// [`OperationContext::start_resumable`](crate::OperationContext::start_resumable) for work that
/// may be run again after a handler restart.
pub struct AsyncOperation<O> {
    pub(crate) token: Option<String>,
    pub(crate) resumable: bool,
    /// Completed by someone else (see [`AsyncOperation::completed_elsewhere`]): no work runs here.
    pub(crate) elsewhere: bool,
    pub(crate) work: Work<O>,
}

impl<O: Send + 'static> AsyncOperation<O> {
    /// Async work; the runtime picks the operation token.
    pub fn new<F, Fut>(work: F) -> Self
    where
        F: FnOnce(AsyncContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, OperationError>> + Send + 'static,
    {
        Self {
            token: None,
            resumable: false,
            elsewhere: false,
            work: Box::new(move |ctx| Box::pin(work(ctx))),
        }
    }

    /// An async operation that something else completes: the caller gets `token` at once, and the
    /// runtime runs no work and sends no completion (the party that completes the operation has
    /// the caller's callback). A Temporal workflow started with the operation's completion
    /// callback attached is such an operation (see `temporal::WorkflowRunOperation`, feature
    /// `temporal`). Its start is not recorded in the dispatcher's store, and cancel requests for
    /// its token are for whoever completes it. The token must be non-empty and valid in a header.
    pub fn completed_elsewhere(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            resumable: false,
            elsewhere: true,
            work: Box::new(|_| Box::pin(std::future::pending())),
        }
    }

    /// Whether something else completes this operation (see
    /// [`completed_elsewhere`](Self::completed_elsewhere)).
    pub fn is_completed_elsewhere(&self) -> bool {
        self.elsewhere
    }

    /// Declares the work resumable: if the handler process stops while it runs, the dispatcher's
    /// store keeps the operation, and the next dispatcher on that store runs it again, by calling
    /// the operation method anew with the same input and request id and with
    /// [`OperationContext::resumed`](crate::OperationContext::resumed) true (the caller keeps its
    /// token). Declare it only for work that can safely be done again: work may run more than
    /// once (at-least-once), though its completion is sent once.
    ///
    /// Work that is not resumable is completed as failed, with a message saying the handler
    /// restarted, when a restarted dispatcher finds it unfinished. Without a store, this
    /// declaration changes nothing.
    #[must_use]
    pub fn resumable(mut self) -> Self {
        self.resumable = true;
        self
    }

    /// Whether the work was declared [resumable](Self::resumable).
    pub fn is_resumable(&self) -> bool {
        self.resumable
    }

    /// Uses `token` as the operation token instead of a generated one. It must be unique among
    /// this handler's running operations, non-empty, and valid in an HTTP header.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Converts the output type (the dispatcher uses it to encode results).
    pub(crate) fn map<P: Send + 'static>(
        self,
        f: impl FnOnce(O) -> Result<P, OperationError> + Send + 'static,
    ) -> AsyncOperation<P> {
        let work = self.work;
        AsyncOperation {
            token: self.token,
            resumable: self.resumable,
            elsewhere: self.elsewhere,
            work: Box::new(move |ctx| {
                let fut = work(ctx);
                Box::pin(async move { fut.await.and_then(f) })
            }),
        }
    }
}

impl<O> fmt::Debug for AsyncOperation<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncOperation")
            .field("token", &self.token)
            .field("resumable", &self.resumable)
            .field("completed_elsewhere", &self.elsewhere)
            .finish_non_exhaustive()
    }
}
