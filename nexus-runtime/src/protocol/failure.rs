//! Handler side of the error mapping: an error becomes a status, headers and a Failure body.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::header;
use crate::codec::JSON;
use crate::error::{Failure, HandlerError, StartError};

/// Which Failure a handler writes for an error: the HandlerError/OperationError envelope, or (for
/// older peers) the envelope's cause.
///
/// The specification sends the envelope. Temporal's handler does so only when the request carries
/// `Temporal-Nexus-Failure-Support: true`; otherwise it sends the envelope's cause when there is
/// one, because older Temporal servers and SDKs read the body as the application failure itself.
/// This crate's server does exactly the same ([`negotiate`](Self::negotiate)), and this crate's
/// transport always sends the header, so two nexus-rs peers always exchange envelopes while a
/// peer that predates envelopes still gets what it understands. Nothing is lost for it: the type
/// travels in the status, the retry override in `Nexus-Request-Retryable` and the operation state
/// in `Nexus-Operation-State`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailureFormat {
    /// The HandlerError or OperationError envelope (the specification).
    #[default]
    Envelope,
    /// The envelope's cause when it has one, the envelope otherwise (Temporal's legacy format).
    CauseIfPresent,
}

impl FailureFormat {
    /// The format a request asks for: [`Envelope`](Self::Envelope) when it carries
    /// `Temporal-Nexus-Failure-Support: true`, [`CauseIfPresent`](Self::CauseIfPresent) otherwise.
    pub fn negotiate(request_headers: &HeaderMap) -> Self {
        let supported = header::first(request_headers, &header::FAILURE_SUPPORT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if supported {
            Self::Envelope
        } else {
            Self::CauseIfPresent
        }
    }

    /// The Failure to send for `envelope`.
    pub fn apply(self, envelope: Failure) -> Failure {
        match self {
            Self::Envelope => envelope,
            Self::CauseIfPresent => match envelope.cause {
                Some(cause) => *cause,
                None => envelope,
            },
        }
    }
}

/// An error as an HTTP response: status, headers (`Content-Type` and the protocol's state or
/// retry headers) and the Failure body.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The Failure sent as the body.
    pub failure: Failure,
}

impl ErrorResponse {
    /// The body: the Failure as JSON.
    pub fn body(&self) -> Bytes {
        // A Failure is strings and JSON values: serializing it cannot fail.
        serde_json::to_vec(&self.failure)
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from_static(br#"{"message":"internal server error"}"#))
    }
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers
}

/// A HandlerError as a response: the status of its type (500 for unknown types), the legacy
/// `Nexus-Request-Retryable` header when the retry behaviour is overridden, and its Failure.
///
/// ```
/// use nexus_runtime::{HandlerError, protocol::{handler_error_response, FailureFormat}};
/// let r = handler_error_response(&HandlerError::unavailable("later").with_retryable(false), FailureFormat::Envelope);
/// assert_eq!(r.status, 503);
/// assert_eq!(r.headers["nexus-request-retryable"], "false");
/// assert_eq!(r.failure.metadata["type"], "nexus.HandlerError");
/// ```
pub fn handler_error_response(error: &HandlerError, format: FailureFormat) -> ErrorResponse {
    let status = StatusCode::from_u16(error.error_type.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = json_headers();
    if let Some(retryable) = error.retryable_override {
        headers.insert(
            header::REQUEST_RETRYABLE,
            HeaderValue::from_static(if retryable { "true" } else { "false" }),
        );
    }
    ErrorResponse {
        status,
        headers,
        failure: format.apply(error.to_failure()),
    }
}

/// A start error as a response: an OperationError is 424 with `Nexus-Operation-State`; a
/// HandlerError as in [`handler_error_response`].
pub fn start_error_response(error: &StartError, format: FailureFormat) -> ErrorResponse {
    match error {
        StartError::Handler(e) => handler_error_response(e, format),
        StartError::Operation(e) => {
            let mut headers = json_headers();
            headers.insert(
                header::OPERATION_STATE,
                HeaderValue::from_static(e.state.as_str()),
            );
            ErrorResponse {
                status: StatusCode::FAILED_DEPENDENCY,
                headers,
                failure: format.apply(e.to_failure()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OperationError;

    #[test]
    fn negotiation_follows_temporal() {
        let mut h = HeaderMap::new();
        assert_eq!(FailureFormat::negotiate(&h), FailureFormat::CauseIfPresent);
        h.insert(header::FAILURE_SUPPORT, HeaderValue::from_static("true"));
        assert_eq!(FailureFormat::negotiate(&h), FailureFormat::Envelope);
        h.insert(header::FAILURE_SUPPORT, HeaderValue::from_static("false"));
        assert_eq!(FailureFormat::negotiate(&h), FailureFormat::CauseIfPresent);
    }

    #[test]
    fn cause_if_present_unwraps_only_when_there_is_a_cause() {
        let with_cause = OperationError::failed("outer").with_cause(Failure::new("inner"));
        let r = start_error_response(&with_cause.into(), FailureFormat::CauseIfPresent);
        assert_eq!(r.status, 424);
        assert_eq!(r.headers["nexus-operation-state"], "failed");
        assert_eq!(r.failure, Failure::new("inner"));
        let bare = OperationError::canceled("stopped");
        let r = start_error_response(&bare.clone().into(), FailureFormat::CauseIfPresent);
        assert_eq!(r.headers["nexus-operation-state"], "canceled");
        assert_eq!(r.failure, bare.to_failure());
    }

    #[test]
    fn every_handler_error_type_gets_its_status() {
        for t in crate::error::HandlerErrorType::ALL {
            let r =
                handler_error_response(&HandlerError::new(t.clone(), "m"), FailureFormat::Envelope);
            assert_eq!(r.status.as_u16(), t.http_status());
            assert!(!r.headers.contains_key(header::REQUEST_RETRYABLE));
            assert_eq!(r.headers["content-type"], JSON);
        }
        let other = HandlerError::new(
            crate::error::HandlerErrorType::Other("NEW_THING".into()),
            "m",
        );
        assert_eq!(
            handler_error_response(&other, FailureFormat::Envelope).status,
            500
        );
    }
}
