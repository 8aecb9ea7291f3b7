//! Per-call options.

use std::time::Duration;

use crate::link::Link;
use crate::machinery::RetryPolicy;
use crate::operation::Headers;

/// What canceling an operation does, as in Temporal.
///
/// Whatever the type, canceling an operation that has not started yet stops it from starting, and
/// the operation ends as canceled. For a started (async) operation:
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CancellationType {
    /// Send no cancel request; the caller stops waiting at once ([`CallError::Canceled`]) and the
    /// operation keeps running on the handler.
    ///
    /// [`CallError::Canceled`]: crate::CallError::Canceled
    Abandon,
    /// Send a cancel request (retried in the background) and stop waiting at once.
    TryCancel,
    /// Send a cancel request; stop waiting once the handler acknowledged it.
    WaitRequested,
    /// Send a cancel request and keep waiting until the operation completes, often as canceled
    /// (an `OperationError` with state `canceled`). The default.
    #[default]
    WaitCompleted,
}

/// Options of one call. Unset fields fall back to the endpoint's configuration
/// ([`EndpointConfig`](crate::client::EndpointConfig)).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// The request id (default: a new time-ordered UUIDv7), the same on every attempt.
    pub request_id: Option<String>,
    /// Bound on the whole operation, from scheduling to its result.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Bound on the time until the operation started (or returned its sync result).
    pub schedule_to_start_timeout: Option<Duration>,
    /// Bound on an async operation, from its start to its result.
    pub start_to_close_timeout: Option<Duration>,
    /// Bound on each attempt (default 10 s), sent as `Request-Timeout`.
    pub request_timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry_policy: Option<RetryPolicy>,
    /// Headers sent with the start request (names are lower-cased).
    pub headers: Headers,
    /// Links sent with the start request.
    pub links: Vec<Link>,
    /// What canceling the operation does.
    pub cancellation_type: CancellationType,
}

impl CallOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the request id.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the schedule-to-close timeout.
    #[must_use]
    pub fn schedule_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.schedule_to_close_timeout = Some(timeout);
        self
    }

    /// Sets the schedule-to-start timeout.
    #[must_use]
    pub fn schedule_to_start_timeout(mut self, timeout: Duration) -> Self {
        self.schedule_to_start_timeout = Some(timeout);
        self
    }

    /// Sets the start-to-close timeout.
    #[must_use]
    pub fn start_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.start_to_close_timeout = Some(timeout);
        self
    }

    /// Sets the per-attempt timeout.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// Adds a link.
    #[must_use]
    pub fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Sets the cancellation type.
    #[must_use]
    pub fn cancellation_type(mut self, cancellation_type: CancellationType) -> Self {
        self.cancellation_type = cancellation_type;
        self
    }
}
