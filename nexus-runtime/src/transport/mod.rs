//! Transports carry start and cancel requests from a caller to a handler.
//!
//! - [`InProcessTransport`]: straight into a [`Dispatcher`](crate::service::Dispatcher) in the same
//!   process, through the same dispatch path, codec and error mapping as HTTP.
//! - `HttpTransport` (feature `http`) speaks Nexus RPC over HTTP; it lives in
//!   [`http`](crate::http) with the rest of the HTTP code, and is re-exported here.
//!
//! A transport makes one attempt; retries, timeouts and limits are the machinery's job.

mod in_process;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use crate::http::{HttpTransport, HttpTransportBuilder, InvalidEndpointUrl};
pub use in_process::InProcessTransport;

use futures::future::BoxFuture;

use crate::error::CallError;
#[doc(no_inline)]
pub use crate::message::{CancelRequest, StartRequest, StartResponse};

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
    /// through an in-process [`Callback::Local`](crate::completion::Callback::Local) sink.
    fn needs_callback_url(&self) -> bool {
        false
    }
}
