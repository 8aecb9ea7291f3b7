//! Completions: how an async operation's outcome reaches the caller, and who receives it.

use std::fmt;
use std::time::SystemTime;

use futures::future::BoxFuture;

use crate::codec::Content;
use crate::error::{HandlerError, OperationError};
use crate::link::Link;
use crate::state::OperationState;

/// The outcome of an async operation, sent by the handler to the caller's callback.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The operation token.
    pub token: String,
    /// The result, or how the operation ended unsuccessfully.
    pub outcome: Result<Content, OperationError>,
    /// Links from the handler.
    pub links: Vec<Link>,
    /// When the operation started, if known.
    pub start_time: Option<SystemTime>,
    /// When the operation ended, if known.
    pub close_time: Option<SystemTime>,
}

impl Completion {
    /// The `Nexus-Operation-State` of this completion: `succeeded`, `failed` or `canceled`.
    pub fn state(&self) -> &'static str {
        match &self.outcome {
            Ok(_) => "succeeded",
            Err(e) => e.state.as_str(),
        }
    }

    /// The state a caller's operation ends in with this completion: `Succeeded`, `Failed` or
    /// `Canceled`.
    pub fn final_state(&self) -> OperationState {
        match &self.outcome {
            Ok(_) => OperationState::Succeeded,
            Err(e) if e.is_canceled() => OperationState::Canceled,
            Err(_) => OperationState::Failed,
        }
    }
}

/// Where a completion goes: the caller's side of an async operation.
///
/// The in-process transport hands the caller's pending-operation table to the handler directly as
/// a sink; over HTTP the handler's completion sender POSTs to a callback URL instead.
pub trait CompletionSink: Send + Sync + 'static {
    /// Delivers a completion. An error is a HandlerError, as a callback receiver answers it: the
    /// sender retries it when it is retryable.
    fn complete(&self, completion: Completion) -> BoxFuture<'static, Result<(), HandlerError>>;
}

/// Where the handler must send the completion of an async operation.
#[derive(Clone)]
pub enum Callback {
    /// POST it to this URL with these headers (from `Nexus-Callback-*`, prefix removed).
    Url {
        /// The callback URL, query included.
        url: String,
        /// Headers to send with the completion.
        headers: std::collections::BTreeMap<String, String>,
    },
    /// Hand it to this sink (in-process callers).
    Local(std::sync::Arc<dyn CompletionSink>),
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url { url, headers } => f
                .debug_struct("Callback::Url")
                .field("url", &crate::security::redact_callback_url(url))
                .field("headers", headers)
                .finish(),
            Self::Local(_) => f.write_str("Callback::Local(..)"),
        }
    }
}

/// Sends completions to [`Callback::Url`] targets (implemented by the HTTP completion sender).
pub trait CompletionSender: Send + Sync + 'static {
    /// Delivers `completion` to `url` with `headers`, retrying as the implementation sees fit.
    fn send(
        &self,
        url: String,
        headers: std::collections::BTreeMap<String, String>,
        completion: Completion,
    ) -> BoxFuture<'static, Result<(), HandlerError>>;
}
