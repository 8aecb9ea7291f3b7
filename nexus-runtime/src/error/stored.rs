//! How a [`CallError`] is stored: as a Nexus [`Failure`], and back, so a handle attached after a
//! restart returns the same typed error the first process saw.
//!
//! | `CallError` | `metadata.type` | `details` | `cause` |
//! |---|---|---|---|
//! | `Operation(e)` | `nexus.OperationError` | `{"state": "failed" \| "canceled"}` | `e.cause` |
//! | `Handler(e)` | `nexus.HandlerError` | `{"type": .., "retryableOverride"?: ..}` | `e.cause` |
//! | `Timeout { kind, last_failure }` | `nexus.TimeoutError` | `{"kind": "schedule-to-close" \| ..}` | `last_failure` |
//! | `Canceled` | `nexus.CanceledError` | | |
//! | `Transport(e)` | `nexus.TransportError` | `{"kind": "connect" \| "timeout" \| "protocol" \| "unavailable"}` | |
//! | `Codec(m)` | `nexus.CodecError` | | |
//! | `Invalid(m)` | `nexus.InvalidCallError` | | |
//! | `NotStarted(m)` | `nexus.NotStartedError` | | |
//!
//! The first two are the wire's own Failures; the others exist only in a caller's store.

use serde_json::json;

use crate::error::{
    CallError, Failure, HandlerError, OperationError, OperationErrorState, TimeoutKind,
    TransportError, TransportErrorKind,
};

impl CallError {
    /// `metadata.type` of a stored [`CallError::Timeout`].
    pub const TIMEOUT_FAILURE_TYPE: &'static str = "nexus.TimeoutError";
    /// `metadata.type` of a stored [`CallError::Canceled`].
    pub const CANCELED_FAILURE_TYPE: &'static str = "nexus.CanceledError";
    /// `metadata.type` of a stored [`CallError::Transport`].
    pub const TRANSPORT_FAILURE_TYPE: &'static str = "nexus.TransportError";
    /// `metadata.type` of a stored [`CallError::Codec`].
    pub const CODEC_FAILURE_TYPE: &'static str = "nexus.CodecError";
    /// `metadata.type` of a stored [`CallError::Invalid`].
    pub const INVALID_FAILURE_TYPE: &'static str = "nexus.InvalidCallError";
    /// `metadata.type` of a stored [`CallError::NotStarted`].
    pub const NOT_STARTED_FAILURE_TYPE: &'static str = "nexus.NotStartedError";

    /// This error as a Failure, as the caller's store keeps it (see the table in the
    /// `client::durable` documentation). [`CallError::from_failure`] reads it back unchanged.
    ///
    /// ```
    /// use nexus_runtime::CallError;
    /// use nexus_runtime::error::TimeoutKind;
    ///
    /// let timeout = CallError::Timeout { kind: TimeoutKind::StartToClose, last_failure: None };
    /// let failure = timeout.to_failure();
    /// assert_eq!(failure.failure_type(), Some("nexus.TimeoutError"));
    /// assert_eq!(CallError::from_failure(&failure), timeout);
    /// ```
    pub fn to_failure(&self) -> Failure {
        match self {
            Self::Operation(e) => e.to_failure(),
            Self::Handler(e) => e.to_failure(),
            Self::Timeout { kind, last_failure } => {
                let failure = Failure::new(self.to_string())
                    .with_metadata("type", Self::TIMEOUT_FAILURE_TYPE)
                    .with_details(json!({ "kind": kind.as_str() }));
                match last_failure {
                    Some(last) => failure.with_cause(last.to_failure()),
                    None => failure,
                }
            }
            Self::Canceled => {
                Failure::new(self.to_string()).with_metadata("type", Self::CANCELED_FAILURE_TYPE)
            }
            Self::Transport(e) => Failure::new(e.message.clone())
                .with_metadata("type", Self::TRANSPORT_FAILURE_TYPE)
                .with_details(json!({ "kind": transport_kind_name(e.kind) })),
            Self::Codec(message) => {
                Failure::new(message.clone()).with_metadata("type", Self::CODEC_FAILURE_TYPE)
            }
            Self::Invalid(message) => {
                Failure::new(message.clone()).with_metadata("type", Self::INVALID_FAILURE_TYPE)
            }
            Self::NotStarted(message) => {
                Failure::new(message.clone()).with_metadata("type", Self::NOT_STARTED_FAILURE_TYPE)
            }
        }
    }

    /// Reads back an error stored with [`CallError::to_failure`]. A Failure of any other type
    /// (one a handler sent) is taken as the cause of a failed [`OperationError`].
    pub fn from_failure(failure: &Failure) -> Self {
        match failure.failure_type() {
            Some(Self::TIMEOUT_FAILURE_TYPE) => Self::Timeout {
                kind: failure
                    .details
                    .as_ref()
                    .and_then(|d| d.get("kind"))
                    .and_then(serde_json::Value::as_str)
                    .and_then(timeout_kind)
                    .unwrap_or(TimeoutKind::ScheduleToClose),
                last_failure: failure
                    .cause
                    .as_deref()
                    .map(|cause| Box::new(Self::from_failure(cause))),
            },
            Some(Self::CANCELED_FAILURE_TYPE) => Self::Canceled,
            Some(Self::TRANSPORT_FAILURE_TYPE) => Self::Transport(TransportError::new(
                failure
                    .details
                    .as_ref()
                    .and_then(|d| d.get("kind"))
                    .and_then(serde_json::Value::as_str)
                    .and_then(transport_kind)
                    .unwrap_or(TransportErrorKind::Protocol),
                failure.message.clone(),
            )),
            Some(Self::CODEC_FAILURE_TYPE) => Self::Codec(failure.message.clone()),
            Some(Self::INVALID_FAILURE_TYPE) => Self::Invalid(failure.message.clone()),
            Some(Self::NOT_STARTED_FAILURE_TYPE) => Self::NotStarted(failure.message.clone()),
            _ => {
                if let Some(e) = HandlerError::from_failure(failure) {
                    Self::Handler(e)
                } else {
                    Self::Operation(OperationError::from_failure_with_state(
                        failure.clone(),
                        OperationErrorState::Failed,
                    ))
                }
            }
        }
    }
}

fn timeout_kind(name: &str) -> Option<TimeoutKind> {
    [
        TimeoutKind::ScheduleToClose,
        TimeoutKind::ScheduleToStart,
        TimeoutKind::StartToClose,
        TimeoutKind::Request,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
}

fn transport_kind_name(kind: TransportErrorKind) -> &'static str {
    match kind {
        TransportErrorKind::Connect => "connect",
        TransportErrorKind::Timeout => "timeout",
        TransportErrorKind::Protocol => "protocol",
        TransportErrorKind::Unavailable => "unavailable",
    }
}

fn transport_kind(name: &str) -> Option<TransportErrorKind> {
    [
        TransportErrorKind::Connect,
        TransportErrorKind::Timeout,
        TransportErrorKind::Protocol,
        TransportErrorKind::Unavailable,
    ]
    .into_iter()
    .find(|k| transport_kind_name(*k) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Declined {
        code: u32,
    }

    #[test]
    fn every_kind_round_trips() {
        let errors = [
            CallError::Operation(
                OperationError::failed("declined").with_details(&Declined { code: 51 }),
            ),
            CallError::Operation(OperationError::canceled("stopped")),
            CallError::Handler(HandlerError::bad_request("no amount")),
            CallError::Handler(HandlerError::internal("boom").with_retryable(false)),
            CallError::Timeout {
                kind: TimeoutKind::ScheduleToStart,
                last_failure: Some(Box::new(CallError::Handler(HandlerError::unavailable(
                    "down",
                )))),
            },
            CallError::Timeout {
                kind: TimeoutKind::Request,
                last_failure: None,
            },
            CallError::Canceled,
            CallError::Transport(TransportError::new(
                TransportErrorKind::Connect,
                "connection refused",
            )),
            CallError::Codec("bad output".into()),
            CallError::Invalid("no such endpoint".into()),
            CallError::NotStarted("the store is full".into()),
        ];
        for error in errors {
            let failure = error.to_failure();
            let text = serde_json::to_string(&failure).expect("serialize");
            let back: Failure = serde_json::from_str(&text).expect("parse");
            assert_eq!(CallError::from_failure(&back), error, "{text}");
        }
    }

    #[test]
    fn typed_details_survive() {
        let error = CallError::Operation(
            OperationError::failed("declined").with_details(&Declined { code: 51 }),
        );
        let back = CallError::from_failure(&error.to_failure());
        let details: Option<Declined> = back
            .as_operation_error()
            .expect("an operation error")
            .details()
            .expect("decodes");
        assert_eq!(details, Some(Declined { code: 51 }));
    }

    #[test]
    fn a_foreign_failure_becomes_a_failed_operation() {
        let failure = Failure::new("workflow failed").with_metadata("type", "temporal.Failure");
        match CallError::from_failure(&failure) {
            CallError::Operation(e) => {
                assert_eq!(e.state, OperationErrorState::Failed);
                assert_eq!(e.cause.as_deref(), Some(&failure));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
