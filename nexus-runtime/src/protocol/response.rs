//! Caller side of the error mapping: reading start and cancel responses.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::content::content_from_headers;
use super::header;
use super::link::links_from_headers;
use crate::codec::is_json_media_type;
use crate::error::{
    CallError, Failure, HandlerError, HandlerErrorType, OperationError, OperationErrorState,
    TransportError, TransportErrorKind,
};
use crate::link::Link;
use crate::message::StartResponse;

/// The body of a 201 answer: `{"token":"…","state":"running"}`. Older handlers sent the token as
/// `id`, which is read when `token` is missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationInfo {
    /// The operation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The operation token under its pre-token name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The state; `running` in a 201 answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

fn protocol(message: impl Into<String>) -> CallError {
    CallError::Transport(TransportError::new(
        TransportErrorKind::Protocol,
        message.into(),
    ))
}

/// At most this much of an unexpected body is quoted in error messages.
const EXCERPT: usize = 512;

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT)]);
    let ellipsis = if body.len() > EXCERPT { "…" } else { "" };
    format!("{}{ellipsis}", text.trim())
}

fn response_links(headers: &HeaderMap) -> Result<Vec<Link>, CallError> {
    links_from_headers(headers)
        .map_err(|e| protocol(format!("the response has a bad Nexus-Link: {e}")))
}

/// Reads the answer to a start request: 200 is a sync result (its `Content-*` headers describe
/// it), 201 an async start (`{"token","state":"running"}` as JSON), anything else an error (see
/// [`error_from_response`]). Malformed answers are [`TransportErrorKind::Protocol`] errors.
pub fn parse_start_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<StartResponse, CallError> {
    match status {
        StatusCode::OK => Ok(StartResponse::Sync {
            links: response_links(headers)?,
            output: content_from_headers(headers, body),
        }),
        StatusCode::CREATED => {
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !is_json_media_type(content_type) || content_type.is_empty() {
                return Err(protocol(format!(
                    "a 201 answer must be JSON, got content type `{content_type}`"
                )));
            }
            let info: OperationInfo = serde_json::from_slice(&body).map_err(|e| {
                protocol(format!(
                    "the 201 body is not operation info JSON ({e}): {}",
                    excerpt(&body)
                ))
            })?;
            if info.state.as_deref() != Some("running") {
                return Err(protocol(format!(
                    "a 201 answer must have state `running`, got {:?}",
                    info.state.unwrap_or_default()
                )));
            }
            let token = info
                .token
                .filter(|t| !t.is_empty())
                .or(info.id.filter(|t| !t.is_empty()))
                .ok_or_else(|| protocol("the 201 answer has no operation token"))?;
            Ok(StartResponse::Async {
                token,
                links: response_links(headers)?,
            })
        }
        _ => Err(error_from_response(status, headers, &body)),
    }
}

/// Reads the answer to a cancel request: 202 is success, anything else an error.
pub fn parse_cancel_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), CallError> {
    if status == StatusCode::ACCEPTED {
        Ok(())
    } else {
        Err(error_from_response(status, headers, body))
    }
}

fn parse_failure(body: &[u8]) -> Result<Option<Failure>, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some)
}

/// Reads an unsuccessful answer, as the Go and Temporal clients do:
/// - 424: the body's OperationError, or a bare (or Temporal) Failure wrapped as an OperationError
///   in the state of `Nexus-Operation-State`;
/// - a body that is a HandlerError Failure wins, whatever the status;
/// - a status of the HandlerError table: a HandlerError of that type (message: the status text)
///   with the body's Failure as its cause, retryable as `Nexus-Request-Retryable` says if present;
/// - anything else: a [`TransportErrorKind::Protocol`] error quoting the status and body.
pub fn error_from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CallError {
    let failure = parse_failure(body);
    if status == StatusCode::FAILED_DEPENDENCY {
        let failure = match failure {
            Ok(Some(f)) => f,
            Ok(None) => Failure::default(),
            Err(e) => {
                return protocol(format!(
                    "the 424 body is not a Failure JSON ({e}): {}",
                    excerpt(body)
                ));
            }
        };
        if let Some(op) = OperationError::from_failure(&failure) {
            return CallError::Operation(op);
        }
        let state = headers
            .get(header::OPERATION_STATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| OperationErrorState::from_wire(s.trim()));
        return match state {
            Some(state) => {
                CallError::Operation(OperationError::from_failure_with_state(failure, state))
            }
            None => protocol(
                "a 424 answer without a valid Nexus-Operation-State header, whose body is not an \
                 OperationError",
            ),
        };
    }
    let failure = match failure {
        Ok(f) => f,
        // Not JSON (a proxy's error page, say): keep the text as the cause's message.
        Err(_) => Some(Failure::new(excerpt(body))),
    };
    if let Some(handler_error) = failure.as_ref().and_then(HandlerError::from_failure) {
        return CallError::Handler(handler_error);
    }
    let Some(error_type) = HandlerErrorType::from_http_status(status.as_u16()) else {
        return protocol(format!(
            "unexpected response status {status}{}",
            if body.is_empty() {
                String::new()
            } else {
                format!(": {}", excerpt(body))
            }
        ));
    };
    let mut error = HandlerError::new(error_type, status.canonical_reason().unwrap_or_default());
    error.cause = failure.map(Box::new);
    error.retryable_override = headers
        .get(header::REQUEST_RETRYABLE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match v.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
    CallError::Handler(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn sync_answers_carry_content_and_links() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("nexus-link", "<https://a.example/x>; type=\"t\""),
        ]);
        let r = parse_start_response(StatusCode::OK, &h, Bytes::from_static(b"{}")).unwrap();
        let StartResponse::Sync { output, links } = r else {
            panic!("not sync: {r:?}")
        };
        assert_eq!(output.content_type(), Some("application/json"));
        assert_eq!(links, [Link::new("https://a.example/x", "t")]);
        let bad = headers(&[("nexus-link", "<https://a.example/x>")]);
        let err = parse_start_response(StatusCode::OK, &bad, Bytes::new()).unwrap_err();
        assert!(matches!(&err, CallError::Transport(t) if t.kind == TransportErrorKind::Protocol));
    }

    #[test]
    fn async_answers_are_checked() {
        let json = headers(&[("content-type", "application/json")]);
        let ok = |body: &'static str| {
            parse_start_response(
                StatusCode::CREATED,
                &json,
                Bytes::from_static(body.as_bytes()),
            )
        };
        assert_eq!(
            ok(r#"{"token":"t1","state":"running"}"#).unwrap(),
            StartResponse::Async {
                token: "t1".into(),
                links: vec![]
            }
        );
        assert_eq!(
            ok(r#"{"id":"legacy","state":"running"}"#).unwrap(),
            StartResponse::Async {
                token: "legacy".into(),
                links: vec![]
            }
        );
        for (body, needle) in [
            (r#"{"token":"t","state":"succeeded"}"#, "state `running`"),
            (r#"{"token":"","state":"running"}"#, "no operation token"),
            (r#"{"state":"running"}"#, "no operation token"),
            ("not json", "not operation info JSON"),
        ] {
            let err = ok(body).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
        let text = headers(&[("content-type", "text/plain")]);
        let err = parse_start_response(
            StatusCode::CREATED,
            &text,
            Bytes::from_static(br#"{"token":"t","state":"running"}"#),
        )
        .unwrap_err();
        assert!(err.to_string().contains("must be JSON"), "{err}");
    }

    #[test]
    fn handler_error_bodies_win_over_the_status() {
        let body = serde_json::to_vec(&HandlerError::unavailable("later").to_failure()).unwrap();
        let h = headers(&[("nexus-request-retryable", "false")]);
        let err = error_from_response(StatusCode::BAD_REQUEST, &h, &body);
        let CallError::Handler(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.error_type, HandlerErrorType::Unavailable);
        // The legacy header is read only when the body is not a HandlerError.
        assert_eq!(e.retryable_override, None);
    }

    #[test]
    fn bare_failures_get_the_type_of_the_status_and_the_legacy_retry_header() {
        let h = headers(&[("nexus-request-retryable", "true")]);
        let err = error_from_response(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"message":"bad input on purpose"}"#,
        );
        let CallError::Handler(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.error_type, HandlerErrorType::BadRequest);
        assert_eq!(e.message, "Bad Request");
        assert_eq!(
            e.cause.as_deref(),
            Some(&Failure::new("bad input on purpose"))
        );
        assert!(e.is_retryable());
        let upstream =
            error_from_response(StatusCode::from_u16(520).unwrap(), &HeaderMap::new(), b"");
        assert_eq!(
            upstream.as_handler_error().map(|e| &e.error_type),
            Some(&HandlerErrorType::UpstreamTimeout)
        );
        let html = error_from_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            b"<h1>down</h1>",
        );
        assert_eq!(
            html.as_handler_error()
                .and_then(|e| e.cause.as_deref())
                .map(|c| c.message.as_str()),
            Some("<h1>down</h1>")
        );
    }

    #[test]
    fn unexpected_statuses_are_protocol_errors() {
        for status in [
            StatusCode::IM_A_TEAPOT,
            StatusCode::BAD_GATEWAY,
            StatusCode::NO_CONTENT,
        ] {
            let err = error_from_response(status, &HeaderMap::new(), b"nope");
            assert!(
                matches!(&err, CallError::Transport(t) if t.kind == TransportErrorKind::Protocol
                    && t.message.contains(status.as_str()) && t.message.contains("nope")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn unsuccessful_operations() {
        let envelope = OperationError::canceled("stopped").to_failure();
        let err = error_from_response(
            StatusCode::FAILED_DEPENDENCY,
            &HeaderMap::new(),
            &serde_json::to_vec(&envelope).unwrap(),
        );
        assert_eq!(
            err,
            CallError::Operation(OperationError::canceled("stopped"))
        );
        // Temporal's shapes: a bare failure, or a Temporal failure, with the state header.
        let h = headers(&[("nexus-operation-state", "failed")]);
        let temporal = json!({"message":"sync op failed on purpose","metadata":{"type":"temporal.api.failure.v1.Failure"},"details":{"applicationFailureInfo":{}}});
        let err = error_from_response(
            StatusCode::FAILED_DEPENDENCY,
            &h,
            temporal.to_string().as_bytes(),
        );
        let op = err.as_operation_error().unwrap();
        assert_eq!(op.state, OperationErrorState::Failed);
        assert_eq!(op.message, "sync op failed on purpose");
        assert_eq!(
            op.cause.as_ref().unwrap().failure_type(),
            Some("temporal.api.failure.v1.Failure")
        );
        let err = error_from_response(
            StatusCode::FAILED_DEPENDENCY,
            &HeaderMap::new(),
            br#"{"message":"x"}"#,
        );
        assert!(err.to_string().contains("Nexus-Operation-State"), "{err}");
        let err = error_from_response(StatusCode::FAILED_DEPENDENCY, &h, b"<html>");
        assert!(err.to_string().contains("not a Failure JSON"), "{err}");
    }

    #[test]
    fn cancel_answers() {
        parse_cancel_response(StatusCode::ACCEPTED, &HeaderMap::new(), b"").unwrap();
        let body =
            serde_json::to_vec(&HandlerError::not_found("no such token").to_failure()).unwrap();
        let err =
            parse_cancel_response(StatusCode::NOT_FOUND, &HeaderMap::new(), &body).unwrap_err();
        assert_eq!(err.as_handler_error().unwrap().message, "no such token");
        let err = parse_cancel_response(StatusCode::OK, &HeaderMap::new(), b"").unwrap_err();
        assert!(matches!(err, CallError::Transport(_)));
    }
}
