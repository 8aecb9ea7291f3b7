//! Per-call options.

use std::time::Duration;

use crate::link::Link;
use crate::operation::Headers;

/// What canceling a started operation does, as in Temporal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CancellationType {
    /// Send no cancel request; the caller stops waiting at once and the operation keeps running.
    Abandon,
    /// Send a cancel request without waiting for it; the caller stops waiting at once.
    TryCancel,
    /// Wait until the handler acknowledged the cancel request, then stop waiting.
    WaitRequested,
    /// Send a cancel request and wait until the operation completes (often as canceled).
    #[default]
    WaitCompleted,
}

/// Options of one call. Unset fields fall back to the endpoint's and the client's defaults.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// The request id (default: a new UUIDv4), the same on every attempt.
    pub request_id: Option<String>,
    /// Bound on the whole operation, from scheduling to its result.
    pub schedule_to_close_timeout: Option<Duration>,
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
