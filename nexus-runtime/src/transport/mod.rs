//! Transports carry start and cancel requests from a caller to a handler.
//!
//! - [`InProcessTransport`]: straight into a [`Dispatcher`](crate::service::Dispatcher) in the same
//!   process, through the same dispatch path, codec and error mapping as HTTP.
//! - `HttpTransport` (feature `http`) speaks Nexus RPC over HTTP.
//!
//! A transport makes one attempt; retries, timeouts and limits are the machinery's job.

#[cfg(feature = "http")]
mod http;
mod in_process;

#[cfg(feature = "http")]
pub(crate) use self::http::client as http_client;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use self::http::{HttpTransport, HttpTransportBuilder, InvalidEndpointUrl};
pub use in_process::InProcessTransport;

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::codec::Content;
use crate::completion::Callback;
use crate::error::CallError;
use crate::link::Link;
use crate::operation::Headers;

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

/// Carries requests to a handler. One call is one attempt.
///
/// Errors: a [`CallError::Handler`] or [`CallError::Operation`] the handler answered, or a
/// [`CallError::Transport`] when there was no answer.
pub trait Transport: Send + Sync + 'static {
    /// Sends a start request.
    fn start(&self, request: StartRequest) -> BoxFuture<'static, Result<StartResponse, CallError>>;

    /// Sends a cancel request.
    fn cancel(&self, request: CancelRequest) -> BoxFuture<'static, Result<(), CallError>>;

    /// Whether completions must come back over the network (to a callback URL) rather than
    /// through an in-process [`Callback::Local`] sink.
    fn needs_callback_url(&self) -> bool {
        false
    }
}
