//! What a caller sees when an operation does not produce its output.

use std::fmt;

use super::{HandlerError, OperationError, StartError};

/// Which timeout expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The whole operation, from scheduling to its result.
    ScheduleToClose,
    /// From scheduling until the operation started (or returned its sync result).
    ScheduleToStart,
    /// From the start of an async operation until its result.
    StartToClose,
    /// One attempt (one HTTP request), sent as `Request-Timeout`.
    Request,
}

impl TimeoutKind {
    /// A stable name: `schedule-to-close`, `schedule-to-start`, `start-to-close`, `request`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScheduleToClose => "schedule-to-close",
            Self::ScheduleToStart => "schedule-to-start",
            Self::StartToClose => "start-to-close",
            Self::Request => "request",
        }
    }
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a transport failed to deliver a request or read its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The peer could not be reached (refused, reset, DNS...).
    Connect,
    /// The attempt ran out of time.
    Timeout,
    /// The peer answered something that is not valid Nexus.
    Protocol,
    /// The transport is closed or misconfigured.
    Unavailable,
}

/// A request that did not get a Nexus answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{kind:?} transport error: {message}")]
pub struct TransportError {
    /// What went wrong.
    pub kind: TransportErrorKind,
    /// Details.
    pub message: String,
}

impl TransportError {
    /// A transport error.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Whether trying again may help: every kind except a misconfigured transport.
    pub fn is_retryable(&self) -> bool {
        !matches!(self.kind, TransportErrorKind::Unavailable)
    }
}

/// Why a call did not return the operation's output.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The operation failed or was canceled by the handler.
    #[error(transparent)]
    Operation(OperationError),
    /// The handler rejected the request with an error that is not retried (or retries ran out).
    #[error(transparent)]
    Handler(HandlerError),
    /// A timeout expired. `last_failure` is the last retryable failure seen, if any.
    #[error("{kind} timeout expired{}", last_failure.as_ref().map(|f| format!(" (last attempt: {f})")).unwrap_or_default())]
    Timeout {
        /// Which timeout.
        kind: TimeoutKind,
        /// The last attempt's failure.
        last_failure: Option<Box<CallError>>,
    },
    /// The caller canceled the operation and stopped waiting for it.
    #[error("operation canceled by the caller")]
    Canceled,
    /// The request could not be delivered.
    #[error(transparent)]
    Transport(TransportError),
    /// The input could not be encoded, or the output could not be decoded.
    #[error("codec error: {0}")]
    Codec(String),
    /// The call cannot be made as configured (unknown endpoint, missing callback route...).
    #[error("invalid call: {0}")]
    Invalid(String),
    /// The operation was never started: the client's store could not record it before its first
    /// attempt (the message gives the store's error). Nothing was sent and nothing was kept, so
    /// calling again, once the store works, starts it.
    #[error("operation not started: {0}")]
    NotStarted(String),
}

impl CallError {
    /// Whether the machinery should try the request again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Handler(e) => e.is_retryable(),
            Self::Transport(e) => e.is_retryable(),
            Self::Timeout { kind, .. } => *kind == TimeoutKind::Request,
            _ => false,
        }
    }

    /// The operation error, if the operation failed or was canceled by the handler.
    pub fn as_operation_error(&self) -> Option<&OperationError> {
        match self {
            Self::Operation(e) => Some(e),
            _ => None,
        }
    }

    /// The handler error, if the handler rejected the request.
    pub fn as_handler_error(&self) -> Option<&HandlerError> {
        match self {
            Self::Handler(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StartError> for CallError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Handler(e) => Self::Handler(e),
            StartError::Operation(e) => Self::Operation(e),
        }
    }
}

impl From<HandlerError> for CallError {
    fn from(e: HandlerError) -> Self {
        Self::Handler(e)
    }
}

impl From<OperationError> for CallError {
    fn from(e: OperationError) -> Self {
        Self::Operation(e)
    }
}

impl From<TransportError> for CallError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}
