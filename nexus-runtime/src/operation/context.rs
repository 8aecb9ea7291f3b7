//! What a handler sees while it runs: [`OperationContext`] for the start request and
//! [`AsyncContext`] for the work of an async operation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::names::OperationNames;
use super::packed_headers::PackedHeaders;
use super::request_cancel::RequestCancel;
use super::start::{AsyncOperation, OperationResult, OperationStart};
use crate::error::OperationError;
use crate::link::Link;
use crate::security::Principal;

pub use crate::message::Headers;

/// The parts of a start request a handler sees; built by the dispatcher, which shares them with
/// the context (the request's names, id and headers are moved in once, not copied).
#[derive(Debug, Default)]
pub(crate) struct ContextParts {
    pub service: String,
    pub operation: String,
    pub request_id: String,
    /// Who is calling (anonymous without an authenticator).
    pub principal: Principal,
    pub headers: Headers,
    pub links: Vec<Link>,
    pub deadline: Option<Instant>,
    pub operation_deadline: Option<Instant>,
    /// Fires when the request ends (see [`RequestCancel`]).
    pub cancel: RequestCancel,
    pub has_callback: bool,
    pub resumed: bool,
    /// Links the handler adds to its response.
    pub response_links: Mutex<Vec<Link>>,
}

/// Everything a handler knows about the start request it is answering.
///
/// It is passed explicitly, by value, as the first argument after `&self` of every operation
/// method:
///
/// ```
/// use nexus_runtime::{HandlerError, OperationContext, OperationResult};
///
/// async fn get_score(ctx: OperationContext, user_id: String) -> OperationResult<u32> {
///     if user_id.is_empty() {
///         return Err(HandlerError::bad_request("`userId` must not be empty").into());
///     }
///     tracing::info!(request_id = ctx.request_id(), "scoring");
///     Ok(42.into())
/// }
/// ```
#[derive(Debug)]
pub struct OperationContext {
    parts: Arc<ContextParts>,
}

impl OperationContext {
    /// A context over parts the dispatcher keeps a reference to (to read the response links and,
    /// on the async path, take the request's parts back).
    pub(crate) fn new(parts: Arc<ContextParts>) -> Self {
        Self { parts }
    }

    /// A context for calling a handler method directly, as unit tests of handlers do.
    ///
    /// ```
    /// let ctx = nexus_runtime::OperationContext::for_test("fraud.v1", "getQuickScore");
    /// assert_eq!(ctx.operation(), "getQuickScore");
    /// ```
    pub fn for_test(service: &str, operation: &str) -> Self {
        Self::for_test_as(service, operation, Principal::anonymous())
    }

    /// A context for calling a handler method directly as `principal` (see
    /// [`for_test`](Self::for_test)).
    ///
    /// ```
    /// use nexus_runtime::security::Principal;
    /// let ctx = nexus_runtime::OperationContext::for_test_as(
    ///     "fraud.v1",
    ///     "flagUser",
    ///     Principal::local("admin"),
    /// );
    /// assert_eq!(ctx.principal().name(), "admin");
    /// ```
    pub fn for_test_as(service: &str, operation: &str, principal: Principal) -> Self {
        Self::new(Arc::new(ContextParts {
            service: service.to_owned(),
            operation: operation.to_owned(),
            request_id: crate::id::new_v4().to_string(),
            principal,
            has_callback: true,
            ..ContextParts::default()
        }))
    }

    /// The service's wire name.
    pub fn service(&self) -> &str {
        &self.parts.service
    }

    /// The operation's wire name.
    pub fn operation(&self) -> &str {
        &self.parts.operation
    }

    /// The request id: the same on every retry of one start, so handlers can deduplicate on it.
    pub fn request_id(&self) -> &str {
        &self.parts.request_id
    }

    /// Who is calling: the principal the handler server's authenticator named (or the one an
    /// in-process transport carries); [`Principal::anonymous`] when nothing authenticated the
    /// request. Allowlists were checked before the method runs; use it for finer decisions.
    ///
    /// ```
    /// use nexus_runtime::{HandlerError, OperationContext, OperationResult};
    ///
    /// async fn flag_user(ctx: OperationContext, user_id: String) -> OperationResult<()> {
    ///     if ctx.principal().name() != "admin" {
    ///         return Err(HandlerError::unauthorized("only `admin` may flag users").into());
    ///     }
    ///     tracing::info!(%user_id, by = %ctx.principal(), "flagged");
    ///     Ok(().into())
    /// }
    /// ```
    pub fn principal(&self) -> &Principal {
        &self.parts.principal
    }

    /// The request headers (lower-case names).
    pub fn headers(&self) -> &Headers {
        &self.parts.headers
    }

    /// One request header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts
            .headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Links the caller sent (for example to the workflow event that scheduled this operation).
    pub fn links(&self) -> &[Link] {
        &self.parts.links
    }

    /// Adds a link to the response (for example to the record of the work this start began).
    pub fn add_link(&self, link: Link) {
        if let Ok(mut links) = self.parts.response_links.lock() {
            links.push(link);
        }
    }

    /// When the caller stops waiting for the answer to this request, if it said.
    pub fn deadline(&self) -> Option<Instant> {
        self.parts.deadline
    }

    /// The time left before [`deadline`](Self::deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.parts
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// When the whole operation must be done (`Operation-Timeout`), if the caller said.
    pub fn operation_deadline(&self) -> Option<Instant> {
        self.parts.operation_deadline
    }

    /// Resolves when the caller gave up on this request (deadline passed or connection closed).
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.parts.cancel.token().cancelled()
    }

    /// Whether the caller gave up on this request.
    pub fn is_cancelled(&self) -> bool {
        self.parts.cancel.is_cancelled()
    }

    /// Whether the caller can receive an async completion (it gave a callback).
    pub fn accepts_async(&self) -> bool {
        self.parts.has_callback
    }

    /// Whether this is not a start request but the resumption of an async operation that this
    /// method started before the handler restarted (see
    /// [`start_resumable`](Self::start_resumable)). The input and request id are the original
    /// ones; there is no request deadline, and the method should answer as it did the first time
    /// (normally with the same resumable async work, whose token the runtime keeps). Use it to
    /// skip what must happen only once at start.
    pub fn resumed(&self) -> bool {
        self.parts.resumed
    }

    /// Answers asynchronously: the runtime returns an operation token to the caller right away,
    /// runs `work` in the background, and delivers its outcome to the caller's callback. The work
    /// receives an [`AsyncContext`] that signals cancellation requests.
    ///
    /// ```
    /// use nexus_runtime::{OperationContext, OperationError, OperationResult};
    ///
    /// async fn long_check(ctx: OperationContext, amount: f64) -> OperationResult<bool> {
    ///     ctx.start_async(move |work| async move {
    ///         tokio::select! {
    ///             _ = work.cancelled() => Err(OperationError::canceled("check canceled")),
    ///             _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => Ok(amount < 10_000.0),
    ///         }
    ///     })
    /// }
    /// ```
    pub fn start_async<O, F, Fut>(&self, work: F) -> OperationResult<O>
    where
        O: Send + 'static,
        F: FnOnce(AsyncContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, OperationError>> + Send + 'static,
    {
        Ok(OperationStart::Async(AsyncOperation::new(work)))
    }

    /// Answers asynchronously as [`start_async`](Self::start_async) does, with work declared
    /// [resumable](AsyncOperation::resumable): when the dispatcher has a store and the handler
    /// process stops before the work ends, the next dispatcher on that store calls this operation
    /// method again (with [`resumed`](Self::resumed) true) and runs the work it returns, under
    /// the token the caller already holds. Work that is not resumable is completed as failed
    /// instead. Only declare work that can be done twice.
    ///
    /// ```
    /// use nexus_runtime::{OperationContext, OperationResult};
    ///
    /// async fn recheck(ctx: OperationContext, account: String) -> OperationResult<bool> {
    ///     if !ctx.resumed() {
    ///         tracing::info!(%account, "new check");
    ///     }
    ///     ctx.start_resumable(move |work| async move {
    ///         // A check can be redone from scratch: nothing is lost if it runs twice.
    ///         Ok(!account.is_empty() && !work.is_cancelled())
    ///     })
    /// }
    /// ```
    pub fn start_resumable<O, F, Fut>(&self, work: F) -> OperationResult<O>
    where
        O: Send + 'static,
        F: FnOnce(AsyncContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, OperationError>> + Send + 'static,
    {
        Ok(OperationStart::Async(AsyncOperation::new(work).resumable()))
    }
}

/// What the work of an async operation sees: its token and a cancellation signal.
#[derive(Clone, Debug)]
pub struct AsyncContext {
    /// Shared with the running table and the operation's task, as are its names.
    pub(crate) token: Arc<str>,
    pub(crate) names: Arc<OperationNames>,
    pub(crate) request_id: String,
    pub(crate) principal: Principal,
    pub(crate) headers: PackedHeaders,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: CancellationToken,
    pub(crate) links: Arc<Mutex<Vec<Link>>>,
    pub(crate) resumed: bool,
}

impl AsyncContext {
    /// The operation token the caller holds.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The service's wire name.
    pub fn service(&self) -> &str {
        &self.names.service
    }

    /// The operation's wire name.
    pub fn operation(&self) -> &str {
        &self.names.operation
    }

    /// The request id of the start request.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Who started the operation (see [`OperationContext::principal`]).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The headers of the start request.
    pub fn headers(&self) -> &Headers {
        self.headers.get()
    }

    /// When the whole operation must be done, if the caller said (`Operation-Timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Resolves when the caller requested cancellation of this operation.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether the caller requested cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether this run of the work resumes an operation started before the handler restarted
    /// (see [`OperationContext::start_resumable`]).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Adds a link to the completion sent to the caller.
    pub fn add_link(&self, link: Link) {
        if let Ok(mut links) = self.links.lock() {
            links.push(link);
        }
    }
}
