//! Completion callbacks: the request a handler POSTs to the caller's callback URL.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::content::{HeaderError, add_content_headers, add_nexus_headers, content_from_headers};
use super::failure::FailureFormat;
use super::header;
use super::link::{add_links_to_headers, links_from_headers};
use super::timestamp::{format_http_date, format_rfc3339, parse_http_date, parse_rfc3339};
use crate::codec::{JSON, is_json_media_type};
use crate::error::{Failure, HandlerError, OperationError, OperationErrorState};
use crate::message::completion::Completion;

/// The headers and body of a completion callback.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    /// The headers: the callback headers, `Nexus-Operation-State`, `-Token`, `-Start-Time`,
    /// `-Close-Time`, `Nexus-Link`, `User-Agent` and the body's `Content-*`.
    pub headers: HeaderMap,
    /// The result, or the Failure JSON.
    pub body: Bytes,
}

/// Builds the callback request of `completion`.
///
/// `callback_headers` are the start request's `Nexus-Callback-*` headers with the prefix
/// removed; they are sent as they are, and the protocol's own headers take precedence over them.
/// A failed or canceled completion's body is the OperationError's Failure in `format` (see
/// [`FailureFormat`]).
pub fn build_completion_request(
    completion: &Completion,
    callback_headers: &BTreeMap<String, String>,
    format: FailureFormat,
) -> Result<CompletionRequest, HeaderError> {
    let mut headers = HeaderMap::new();
    add_nexus_headers(callback_headers, &mut headers)?;
    let body = match &completion.outcome {
        Ok(content) => {
            add_content_headers(content, &mut headers)?;
            content.data.clone()
        }
        Err(error) => {
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            let failure = format.apply(error.to_failure());
            Bytes::from(serde_json::to_vec(&failure).map_err(|e| HeaderError {
                name: "body".into(),
                problem: format!("the Failure cannot be serialized: {e}"),
            })?)
        }
    };
    headers.insert(
        header::OPERATION_STATE,
        HeaderValue::from_static(completion.state()),
    );
    if !completion.token.is_empty() {
        let token = HeaderValue::from_str(&completion.token).map_err(|_| HeaderError {
            name: header::OPERATION_TOKEN.to_string(),
            problem: "the operation token is not a valid header value".into(),
        })?;
        headers.insert(header::OPERATION_TOKEN, token);
    }
    let mut add_time = |name: http::HeaderName, text: String| {
        // Dates are ASCII digits, letters, spaces and punctuation: always valid header values.
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert(name, value);
        }
    };
    if let Some(start) = completion.start_time {
        add_time(header::OPERATION_START_TIME, format_http_date(start));
    }
    if let Some(close) = completion.close_time {
        add_time(header::OPERATION_CLOSE_TIME, format_rfc3339(close));
    }
    headers.remove(header::LINK);
    add_links_to_headers(&completion.links, &mut headers).map_err(|e| HeaderError {
        name: header::LINK.to_string(),
        problem: e.to_string(),
    })?;
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(super::USER_AGENT),
    );
    Ok(CompletionRequest { headers, body })
}

/// Reads a completion callback, as the Go and Temporal receivers do. Every problem is a
/// BAD_REQUEST naming it:
/// - `Nexus-Operation-State` must be `succeeded`, `failed` or `canceled`;
/// - the token comes from `Nexus-Operation-Token`, or the older `Nexus-Operation-Id` (empty when
///   neither is sent);
/// - `Nexus-Operation-Start-Time` must be an HTTP-date and `Nexus-Operation-Close-Time` RFC 3339;
/// - links must be valid;
/// - a failed or canceled completion must carry a JSON Failure; one that is not an OperationError
///   (Temporal sends the envelope's cause) is wrapped in the state of the header.
pub fn parse_completion(headers: &HeaderMap, body: Bytes) -> Result<Completion, HandlerError> {
    let text = |name: &http::HeaderName| -> Result<Option<&str>, HandlerError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::trim).map_err(|_| {
                    HandlerError::bad_request(format!("the `{name}` header is not visible ASCII"))
                })
            })
            .transpose()
    };
    let state = text(&header::OPERATION_STATE)?.ok_or_else(|| {
        HandlerError::bad_request("the completion has no `Nexus-Operation-State` header")
    })?;
    let failed_state = match state {
        "succeeded" => None,
        other => Some(OperationErrorState::from_wire(other).ok_or_else(|| {
            HandlerError::bad_request(format!(
                "invalid `Nexus-Operation-State` `{other}`: expected succeeded, failed or canceled"
            ))
        })?),
    };
    let token = match text(&header::OPERATION_TOKEN)? {
        Some(token) => token,
        None => text(&header::OPERATION_ID)?.unwrap_or(""),
    }
    .to_owned();
    let start_time = text(&header::OPERATION_START_TIME)?
        .map(|v| {
            parse_http_date(v).map_err(|e| {
                HandlerError::bad_request(format!("bad `Nexus-Operation-Start-Time`: {e}"))
            })
        })
        .transpose()?;
    let close_time = text(&header::OPERATION_CLOSE_TIME)?
        .map(|v| {
            parse_rfc3339(v).map_err(|e| {
                HandlerError::bad_request(format!("bad `Nexus-Operation-Close-Time`: {e}"))
            })
        })
        .transpose()?;
    let links = links_from_headers(headers)
        .map_err(|e| HandlerError::bad_request(format!("bad `Nexus-Link` header: {e}")))?;
    let outcome = match failed_state {
        None => Ok(content_from_headers(headers, body)),
        Some(state) => {
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if content_type.is_empty() || !is_json_media_type(content_type) {
                return Err(HandlerError::bad_request(format!(
                    "a {state} completion must carry a JSON Failure, got content type \
                     `{content_type}`"
                )));
            }
            let failure: Failure = serde_json::from_slice(&body).map_err(|e| {
                HandlerError::bad_request(format!(
                    "the body of a {state} completion is not a Failure JSON: {e}"
                ))
            })?;
            Err(OperationError::from_failure_with_state(failure, state))
        }
    };
    Ok(Completion {
        token,
        outcome,
        links,
        start_time,
        close_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Content;
    use crate::link::Link;
    use std::time::{Duration, UNIX_EPOCH};

    fn completion(outcome: Result<Content, OperationError>) -> Completion {
        Completion {
            token: "tok-1".into(),
            outcome,
            links: vec![Link::new(
                "temporal:///namespaces/default/workflows/wf/run/history?eventID=1",
                "temporal.api.common.v1.Link.WorkflowEvent",
            )],
            start_time: Some(UNIX_EPOCH + Duration::from_secs(1_795_438_913)),
            close_time: Some(UNIX_EPOCH + Duration::new(1_795_438_914, 355_519_283)),
        }
    }

    #[test]
    fn success_round_trips_with_headers_and_times() {
        let c = completion(Ok(Content::new(JSON, r#"{"a":1}"#)));
        let callback = BTreeMap::from([("temporal-callback-token".to_owned(), "cb".to_owned())]);
        let req = build_completion_request(&c, &callback, FailureFormat::Envelope).unwrap();
        let h = &req.headers;
        assert_eq!(h["temporal-callback-token"], "cb");
        assert_eq!(h["nexus-operation-state"], "succeeded");
        assert_eq!(h["nexus-operation-token"], "tok-1");
        assert_eq!(
            h["nexus-operation-start-time"],
            "Mon, 23 Nov 2026 13:01:53 GMT"
        );
        assert_eq!(
            h["nexus-operation-close-time"],
            "2026-11-23T13:01:54.355519283Z"
        );
        assert_eq!(h["content-type"], JSON);
        assert!(h["user-agent"].to_str().unwrap().starts_with("nexus-rs/"));
        assert_eq!(parse_completion(h, req.body).unwrap(), c);
    }

    #[test]
    fn failures_round_trip_in_both_formats() {
        let err =
            OperationError::failed("bad amount").with_details(&serde_json::json!({"code": 7}));
        let c = completion(Err(err.clone()));
        let envelope =
            build_completion_request(&c, &BTreeMap::new(), FailureFormat::Envelope).unwrap();
        assert_eq!(
            parse_completion(&envelope.headers, envelope.body).unwrap(),
            c
        );
        let legacy =
            build_completion_request(&c, &BTreeMap::new(), FailureFormat::CauseIfPresent).unwrap();
        let body: Failure = serde_json::from_slice(&legacy.body).unwrap();
        assert_eq!(body.failure_type(), None, "the cause travels alone");
        let back = parse_completion(&legacy.headers, legacy.body).unwrap();
        let back_err = back.outcome.unwrap_err();
        assert_eq!(back_err.state, OperationErrorState::Failed);
        assert_eq!(back_err.message, "bad amount");
        assert_eq!(
            back_err.details::<serde_json::Value>().unwrap(),
            Some(serde_json::json!({"code": 7}))
        );
    }

    #[test]
    fn bad_completions_name_the_problem() {
        let ok = build_completion_request(
            &completion(Err(OperationError::canceled("stop"))),
            &BTreeMap::new(),
            FailureFormat::Envelope,
        )
        .unwrap();
        type Mutation = Box<dyn Fn(&mut HeaderMap, &mut Bytes)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "no `Nexus-Operation-State`",
                Box::new(|h, _| {
                    h.remove(header::OPERATION_STATE);
                }),
            ),
            (
                "invalid `Nexus-Operation-State` `running`",
                Box::new(|h, _| {
                    h.insert(header::OPERATION_STATE, HeaderValue::from_static("running"));
                }),
            ),
            (
                "Start-Time",
                Box::new(|h, _| {
                    h.insert(
                        header::OPERATION_START_TIME,
                        HeaderValue::from_static("yesterday"),
                    );
                }),
            ),
            (
                "Close-Time",
                Box::new(|h, _| {
                    h.insert(
                        header::OPERATION_CLOSE_TIME,
                        HeaderValue::from_static("Mon, 23 Nov 2026 13:01:53 GMT"),
                    );
                }),
            ),
            (
                "Nexus-Link",
                Box::new(|h, _| {
                    h.insert(header::LINK, HeaderValue::from_static("<>; type=\"x\""));
                }),
            ),
            (
                "content type `text/plain`",
                Box::new(|h, _| {
                    h.insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain"),
                    );
                }),
            ),
            (
                "not a Failure JSON",
                Box::new(|_, b| {
                    *b = Bytes::from_static(b"{oops");
                }),
            ),
        ];
        for (needle, mutate) in cases {
            let (mut h, mut b) = (ok.headers.clone(), ok.body.clone());
            mutate(&mut h, &mut b);
            let err = parse_completion(&h, b).unwrap_err();
            assert_eq!(err.error_type, crate::error::HandlerErrorType::BadRequest);
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
    }

    #[test]
    fn the_legacy_token_header_is_accepted() {
        let mut h = HeaderMap::new();
        h.insert(
            header::OPERATION_STATE,
            HeaderValue::from_static("succeeded"),
        );
        h.insert(header::OPERATION_ID, HeaderValue::from_static("old-id"));
        let c = parse_completion(&h, Bytes::new()).unwrap();
        assert_eq!(c.token, "old-id");
        assert_eq!(c.outcome, Ok(Content::empty()));
        assert_eq!((c.start_time, c.close_time), (None, None));
    }
}
