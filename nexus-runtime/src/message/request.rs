//! The requests a caller sends and the answers it gets back.

use std::time::Duration;

use tokio::time::Instant;

use super::Headers;
use super::completion::Callback;
use crate::codec::Content;
use crate::link::Link;

/// A request to start an operation.
#[derive(Clone, Debug)]
pub struct StartRequest {
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// Identifies this start across retries; handlers deduplicate on it.
    pub request_id: String,
    /// Caller headers (lower-case names).
    pub headers: Headers,
    /// Links to the caller's records.
    pub links: Vec<Link>,
    /// Where to deliver the completion if the handler answers asynchronously.
    pub callback: Option<Callback>,
    /// When the caller stops waiting for this attempt (sent as `Request-Timeout`).
    pub request_deadline: Option<Instant>,
    /// How long the whole operation may still take (sent as `Operation-Timeout`).
    pub operation_timeout: Option<Duration>,
    /// The input.
    pub input: Content,
}

/// The answer to a start request.
#[derive(Clone, Debug, PartialEq)]
pub enum StartResponse {
    /// The operation completed synchronously with this result.
    Sync {
        /// The result.
        output: Content,
        /// Links from the handler.
        links: Vec<Link>,
    },
    /// The operation started; its completion will be delivered to the callback.
    Async {
        /// The operation token.
        token: String,
        /// Links from the handler.
        links: Vec<Link>,
    },
}

/// A request to cancel an async operation.
#[derive(Clone, Debug)]
pub struct CancelRequest {
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The operation token.
    pub token: String,
    /// Caller headers (lower-case names).
    pub headers: Headers,
    /// When the caller stops waiting for this attempt.
    pub request_deadline: Option<Instant>,
}
