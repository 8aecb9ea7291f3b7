//! Outcome labels shared by spans and metrics: what an attempt or a request ended with, in the
//! formats of Temporal's Nexus metrics (`handler_error:<TYPE>`, `operation_error:<state>`).

use std::fmt;

use crate::error::{CallError, HandlerError, OperationError, StartError};

/// The outcome of a failed call attempt, as a label (formatted only when displayed).
pub(crate) struct CallErrorLabel<'a>(pub &'a CallError);

impl fmt::Display for CallErrorLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            CallError::Operation(e) => OperationErrorLabel(e).fmt(f),
            CallError::Handler(e) => HandlerErrorLabel(e).fmt(f),
            CallError::Timeout { .. } => f.write_str("timeout"),
            CallError::Canceled => f.write_str("canceled"),
            CallError::Transport(_) => f.write_str("transport_error"),
            CallError::Codec(_) => f.write_str("codec_error"),
            CallError::Invalid(_) => f.write_str("invalid"),
            CallError::NotStarted(_) => f.write_str("not_started"),
        }
    }
}

/// `handler_error:<TYPE>`.
pub(crate) struct HandlerErrorLabel<'a>(pub &'a HandlerError);

impl fmt::Display for HandlerErrorLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler_error:{}", self.0.error_type.as_str())
    }
}

/// `operation_error:<state>` (`failed` or `canceled`).
pub(crate) struct OperationErrorLabel<'a>(pub &'a OperationError);

impl fmt::Display for OperationErrorLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation_error:{}", self.0.state.as_str())
    }
}

/// The answer of a failed start on the handler side.
pub(crate) struct StartErrorLabel<'a>(pub &'a StartError);

impl fmt::Display for StartErrorLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StartError::Handler(e) => HandlerErrorLabel(e).fmt(f),
            StartError::Operation(e) => OperationErrorLabel(e).fmt(f),
        }
    }
}
