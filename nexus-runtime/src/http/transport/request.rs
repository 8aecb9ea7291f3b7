//! Building the HTTP requests of the transport: URL, headers and attempt timeout.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use crate::completion::Callback;
use crate::error::{CallError, TimeoutKind};
use crate::protocol::{self, header};
use crate::transport::{CancelRequest, StartRequest};

/// A request ready to send (the body is passed separately).
pub(super) struct Prepared {
    pub url: String,
    pub headers: HeaderMap,
    /// How long this attempt may take (from the request deadline).
    pub timeout: Option<Duration>,
}

fn invalid(e: impl std::fmt::Display) -> CallError {
    CallError::Invalid(e.to_string())
}

/// The time left before `deadline`; an expired deadline is a request timeout, sent nowhere.
fn remaining(deadline: Option<Instant>) -> Result<Option<Duration>, CallError> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) {
        return Err(CallError::Timeout {
            kind: TimeoutKind::Request,
            last_failure: None,
        });
    }
    Ok(Some(left))
}

fn set(headers: &mut HeaderMap, name: http::HeaderName, value: &str) -> Result<(), CallError> {
    let value = HeaderValue::from_str(value).map_err(|_| {
        invalid(format!(
            "`{name}` value {value:?} is not a valid header value"
        ))
    })?;
    headers.insert(name, value);
    Ok(())
}

/// Headers every request carries: the caller's, then the protocol's (which win, except an
/// explicit `Request-Timeout`).
fn common_headers(
    caller: &crate::operation::Headers,
    timeout: Option<Duration>,
) -> Result<HeaderMap, CallError> {
    let mut headers = HeaderMap::new();
    protocol::add_nexus_headers(caller, &mut headers).map_err(invalid)?;
    // A `Request-Timeout` the caller set explicitly wins, as in the Go client.
    if let Some(timeout) = timeout
        && !headers.contains_key(header::REQUEST_TIMEOUT)
    {
        set(
            &mut headers,
            header::REQUEST_TIMEOUT,
            &protocol::format_duration(timeout),
        )?;
    }
    headers.insert(header::FAILURE_SUPPORT, HeaderValue::from_static("true"));
    if !headers.contains_key(http::header::USER_AGENT) {
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(protocol::USER_AGENT),
        );
    }
    Ok(headers)
}

pub(super) fn start(base: &str, request: &StartRequest) -> Result<Prepared, CallError> {
    let timeout = remaining(request.request_deadline)?;
    let mut headers = common_headers(&request.headers, timeout)?;
    set(&mut headers, header::REQUEST_ID, &request.request_id)?;
    if let Some(operation_timeout) = request.operation_timeout {
        set(
            &mut headers,
            header::OPERATION_TIMEOUT,
            &protocol::format_duration(operation_timeout),
        )?;
    }
    headers.remove(header::LINK);
    protocol::add_links_to_headers(&request.links, &mut headers).map_err(invalid)?;
    protocol::add_content_headers(&request.input, &mut headers).map_err(invalid)?;
    let mut url = format!(
        "{base}{}",
        protocol::start_path(&request.service, &request.operation)
    );
    match &request.callback {
        None => {}
        Some(Callback::Url {
            url: callback,
            headers: callback_headers,
        }) => {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .append_pair(protocol::CALLBACK_QUERY, callback)
                    .finish(),
            );
            protocol::add_callback_headers(callback_headers, &mut headers).map_err(invalid)?;
        }
        Some(Callback::Local(_)) => {
            return Err(CallError::Invalid(
                "an in-process completion sink cannot be reached over HTTP; give the client a \
                 callback URL (ClientBuilder::callback_url)"
                    .into(),
            ));
        }
    }
    Ok(Prepared {
        url,
        headers,
        timeout,
    })
}

pub(super) fn cancel(base: &str, request: &CancelRequest) -> Result<Prepared, CallError> {
    let timeout = remaining(request.request_deadline)?;
    let mut headers = common_headers(&request.headers, timeout)?;
    if request.token.is_empty() {
        return Err(invalid("cannot cancel: the operation token is empty"));
    }
    set(&mut headers, header::OPERATION_TOKEN, &request.token)?;
    Ok(Prepared {
        url: format!(
            "{base}{}",
            protocol::cancel_path(&request.service, &request.operation)
        ),
        headers,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Content;
    use crate::link::Link;
    use std::collections::BTreeMap;

    fn start_request() -> StartRequest {
        StartRequest {
            service: "Ser/vic e".into(),
            operation: "i need to/be escaped".into(),
            request_id: "req-1".into(),
            headers: BTreeMap::from([("x-custom-hdr".into(), "abc".into())]),
            links: vec![Link::new("https://a.example/x?y=1", "com.example.T")],
            callback: Some(Callback::Url {
                url: "http://127.0.0.1:9/cb/1?x=a b".into(),
                headers: BTreeMap::from([("temporal-callback-token".into(), "tok".into())]),
            }),
            request_deadline: None,
            operation_timeout: Some(Duration::from_millis(19_997)),
            input: Content::new("application/json", "{}"),
        }
    }

    #[test]
    fn start_requests_carry_every_protocol_header() {
        let p = start("http://h/base", &start_request()).unwrap();
        assert_eq!(
            p.url,
            "http://h/base/Ser%2Fvic%20e/i%20need%20to%2Fbe%20escaped\
             ?callback=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2F1%3Fx%3Da+b"
        );
        let h = &p.headers;
        assert_eq!(h["nexus-request-id"], "req-1");
        assert_eq!(h["operation-timeout"], "19997ms");
        assert!(!h.contains_key("request-timeout"));
        assert_eq!(h["x-custom-hdr"], "abc");
        assert_eq!(h["nexus-callback-temporal-callback-token"], "tok");
        assert_eq!(
            h["nexus-link"],
            "<https://a.example/x?y=1>; type=\"com.example.T\""
        );
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["temporal-nexus-failure-support"], "true");
        assert_eq!(p.timeout, None);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_become_request_timeouts() {
        let mut r = start_request();
        r.request_deadline = Some(Instant::now() + Duration::from_millis(9_999));
        let p = start("http://h", &r).unwrap();
        assert_eq!(p.headers["request-timeout"], "9999ms");
        assert_eq!(p.timeout, Some(Duration::from_millis(9_999)));
        tokio::time::advance(Duration::from_secs(10)).await;
        let err = start("http://h", &r).err().unwrap();
        assert!(matches!(
            err,
            CallError::Timeout {
                kind: TimeoutKind::Request,
                ..
            }
        ));
    }

    #[test]
    fn bad_inputs_are_invalid_calls() {
        let mut r = start_request();
        r.headers.insert("bad header".into(), "v".into());
        assert!(matches!(start("http://h", &r), Err(CallError::Invalid(_))));
        let mut r = start_request();
        r.links = vec![Link::new("https://a.example/x,y", "t")];
        let err = start("http://h", &r).err().unwrap();
        assert!(err.to_string().contains("`,`"), "{err}");
        let cancel_request = CancelRequest {
            service: "s".into(),
            operation: "o".into(),
            token: String::new(),
            headers: BTreeMap::new(),
            request_deadline: None,
        };
        assert!(matches!(
            cancel("http://h", &cancel_request),
            Err(CallError::Invalid(_))
        ));
    }

    #[test]
    fn cancel_requests_carry_the_token_header() {
        let r = CancelRequest {
            service: "svc".into(),
            operation: "op".into(),
            token: "a/sync".into(),
            headers: BTreeMap::new(),
            request_deadline: None,
        };
        let p = cancel("http://h/p", &r).unwrap();
        assert_eq!(p.url, "http://h/p/svc/op/cancel");
        assert_eq!(p.headers["nexus-operation-token"], "a/sync");
    }
}
