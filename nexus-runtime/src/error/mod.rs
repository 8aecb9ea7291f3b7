//! The Nexus error model.
//!
//! Two kinds of error cross the wire, both as a [`Failure`] JSON:
//! - [`HandlerError`]: the *request* failed (bad input, unavailable, internal...). Its type decides
//!   the HTTP status and whether the caller retries.
//! - [`OperationError`]: the *operation* ended as failed or canceled. It is the outcome, never retried.
//!
//! A handler returns either from an operation as a [`StartError`]; a caller sees a [`CallError`],
//! which adds what can go wrong on the caller's side (timeouts, transport, cancellation).

mod call_error;
mod failure;
mod handler_error;
mod operation_error;
mod stored;

pub use call_error::{CallError, TimeoutKind, TransportError, TransportErrorKind};
pub use failure::{Failure, HANDLER_ERROR_TYPE, OPERATION_ERROR_TYPE};
pub use handler_error::{HandlerError, HandlerErrorType};
pub use operation_error::{OperationError, OperationErrorState};

/// Why a handler did not start an operation: the request failed ([`HandlerError`]) or the operation
/// ended unsuccessfully right away ([`OperationError`]). Both convert with `?` and `.into()`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StartError {
    /// The request failed.
    #[error(transparent)]
    Handler(#[from] HandlerError),
    /// The operation failed or was canceled.
    #[error(transparent)]
    Operation(#[from] OperationError),
}

impl StartError {
    /// The Failure this error is sent as.
    pub fn to_failure(&self) -> Failure {
        match self {
            Self::Handler(e) => e.to_failure(),
            Self::Operation(e) => e.to_failure(),
        }
    }
}
