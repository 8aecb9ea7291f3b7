//! One call of an operation, configured fluently and awaited or started.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::{CallOptions, CancellationType, OperationHandle, ServiceClient};
use crate::error::CallError;
use crate::link::Link;
use crate::machinery::RetryPolicy;
use crate::operation::Operation;

/// A call of operation `Op`, not yet sent. Generated caller stubs return it.
///
/// - `.await` it to start the operation and wait for its result, whether the handler answers
///   synchronously or asynchronously;
/// - [`start`](Self::start) it to get an [`OperationHandle`] (token, result, cancel) once the
///   operation started;
/// - [`schedule`](Self::schedule) it to get the handle at once and watch the pending operation
///   (attempts, backoff, breaker) through [`OperationHandle::info`].
///
/// Options left unset come from the endpoint's [`EndpointConfig`](crate::client::EndpointConfig).
/// A call made inside a handler (or an async operation's work) inherits the handler's remaining
/// deadline when it is smaller than its own, and is canceled, according to its cancellation type,
/// when the handler's operation is canceled.
///
/// ```no_run
/// # use std::time::Duration;
/// # use nexus_runtime::{Client, OperationContext, OperationResult};
/// # #[nexus_runtime::nexus_service(name = "echo.v1")]
/// # pub trait Echo {
/// #     async fn echo(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
/// # }
/// # async fn demo(client: Client) -> Result<(), nexus_runtime::CallError> {
/// let echo = EchoClient::new(client, "echo-endpoint");
/// let out = echo.echo("hi".into()).await?;
/// let out = echo
///     .echo("hi".into())
///     .request_id("order-42")
///     .schedule_to_close_timeout(Duration::from_secs(30))
///     .header("x-tenant", "acme")
///     .await?;
/// let handle = echo.echo("hi".into()).start().await?;
/// println!("token: {:?}", handle.token());
/// let out = handle.result().await?;
/// # Ok(()) }
/// ```
#[must_use = "a call does nothing until it is awaited or started"]
pub struct Call<Op: Operation> {
    service: ServiceClient,
    input: Op::Input,
    options: CallOptions,
}

impl<Op: Operation> std::fmt::Debug for Call<Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("operation", &Op::NAME)
            .field("endpoint", &self.service.endpoint())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<Op: Operation> Call<Op> {
    pub(crate) fn new(service: ServiceClient, input: Op::Input) -> Self {
        Self {
            service,
            input,
            options: CallOptions::default(),
        }
    }

    /// Replaces all options.
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the request id (default: a new time-ordered UUIDv7), sent on every attempt.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.options.request_id = Some(id.into());
        self
    }

    /// Bounds the whole operation, from now until its result.
    pub fn schedule_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.options.schedule_to_close_timeout = Some(timeout);
        self
    }

    /// Bounds the time until the operation started (or returned its sync result).
    pub fn schedule_to_start_timeout(mut self, timeout: Duration) -> Self {
        self.options.schedule_to_start_timeout = Some(timeout);
        self
    }

    /// Bounds an async operation from its start to its result.
    pub fn start_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.options.start_to_close_timeout = Some(timeout);
        self
    }

    /// Bounds each attempt (default 10 s); sent as `Request-Timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = Some(timeout);
        self
    }

    /// Sets how failed attempts are retried (default: the endpoint's policy).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry_policy = Some(policy);
        self
    }

    /// Adds a header to the start request.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.options = self.options.header(name, value);
        self
    }

    /// Adds a link to the start request.
    pub fn link(mut self, link: Link) -> Self {
        self.options.links.push(link);
        self
    }

    /// Sets what canceling the operation does.
    pub fn cancellation_type(mut self, cancellation_type: CancellationType) -> Self {
        self.options.cancellation_type = cancellation_type;
        self
    }

    /// Starts the operation and returns its handle once it started (its token is known) or
    /// answered synchronously, without waiting for an async result. Fails if the operation ended
    /// before starting (a non-retryable error, a timeout, a cancellation).
    pub async fn start(self) -> Result<OperationHandle<Op>, CallError> {
        self.service
            .client()
            .start::<Op>(self.service.endpoint(), self.input, self.options)
            .await
    }

    /// Schedules the operation and returns its handle at once; a background task drives it.
    /// Fails only if the call cannot be made as configured (unknown endpoint, input that does not
    /// encode, no Tokio runtime).
    pub fn schedule(self) -> Result<OperationHandle<Op>, CallError> {
        self.service
            .client()
            .schedule::<Op>(self.service.endpoint(), self.input, self.options)
    }
}

impl<Op: Operation> IntoFuture for Call<Op> {
    type Output = Result<Op::Output, CallError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.service
                .client()
                .call::<Op>(self.service.endpoint(), self.input, self.options)
                .await
        })
    }
}
