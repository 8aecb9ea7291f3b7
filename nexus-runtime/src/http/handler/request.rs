//! Decoding start and cancel requests from HTTP into the dispatcher's requests.

use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use reqwest::Url;
use tokio::time::Instant;

use crate::completion::Callback;
use crate::error::HandlerError;
use crate::protocol::{self, header};
use crate::security::redact_callback_url;
use crate::transport::{CancelRequest, StartRequest};

/// The protocol's headers a start request's path reads, found in one pass over the request's
/// headers (the first value of each): a request carries a handful, and comparing their names
/// is cheaper than looking each of these up, most of them absent.
#[derive(Default)]
struct StartHeaders<'a> {
    request_timeout: Option<&'a HeaderValue>,
    operation_timeout: Option<&'a HeaderValue>,
    request_id: Option<&'a HeaderValue>,
    /// Whether there is a `Nexus-Link` (read then with [`protocol::links_from_headers`]).
    links: bool,
}

impl<'a> StartHeaders<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            if *name == header::REQUEST_ID {
                found.request_id.get_or_insert(value);
            } else if *name == header::REQUEST_TIMEOUT {
                found.request_timeout.get_or_insert(value);
            } else if *name == header::OPERATION_TIMEOUT {
                found.operation_timeout.get_or_insert(value);
            } else if *name == header::LINK {
                found.links = true;
            }
        }
        found
    }
}

/// A header as text, if present; a value that is not visible ASCII is BAD_REQUEST.
fn text<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<&'a str>, HandlerError> {
    value_text(header::first(headers, name), name)
}

/// The value of header `name` as text, if present; not visible ASCII is BAD_REQUEST.
fn value_text<'a>(
    value: Option<&'a HeaderValue>,
    name: &http::HeaderName,
) -> Result<Option<&'a str>, HandlerError> {
    value
        .map(|v| {
            v.to_str().map(str::trim).map_err(|_| {
                HandlerError::bad_request(format!("the `{name}` header is not visible ASCII"))
            })
        })
        .transpose()
}

/// `Request-Timeout` or `Operation-Timeout` (`name`, whose value is `value`), parsed; a
/// malformed value, or one longer than [`protocol::MAX_TIMEOUT`], is BAD_REQUEST naming the
/// header.
fn timeout(
    value: Option<&HeaderValue>,
    name: &http::HeaderName,
) -> Result<Option<std::time::Duration>, HandlerError> {
    let Some(value) = value_text(value, name)? else {
        return Ok(None);
    };
    let invalid =
        |problem: String| HandlerError::bad_request(format!("invalid `{name}` header: {problem}"));
    let timeout = protocol::parse_duration(value).map_err(|e| invalid(e.to_string()))?;
    if timeout > protocol::MAX_TIMEOUT {
        return Err(invalid(format!(
            "`{value}` is longer than the longest timeout accepted ({})",
            humantime::format_duration(protocol::MAX_TIMEOUT)
        )));
    }
    Ok(Some(timeout))
}

/// When the caller stops waiting for this request, from `Request-Timeout` (`value`).
fn request_deadline(value: Option<&HeaderValue>) -> Result<Option<Instant>, HandlerError> {
    let name = &header::REQUEST_TIMEOUT;
    timeout(value, name)?
        .map(|t| {
            Instant::now().checked_add(t).ok_or_else(|| {
                HandlerError::bad_request(format!(
                    "invalid `{name}` header: {t:?} from now is beyond this host's clock"
                ))
            })
        })
        .transpose()
}

/// The callback of a start request: the `callback` query parameter (an http or https URL) and
/// the `Nexus-Callback-*` headers with their prefix removed.
fn callback(parts: &Parts) -> Result<Option<Callback>, HandlerError> {
    let Some(url) = protocol::query_param(parts.uri.query(), protocol::CALLBACK_QUERY) else {
        return Ok(None);
    };
    let parsed = Url::parse(&url).map_err(|e| {
        HandlerError::bad_request(format!(
            "invalid callback URL `{}`: {e}",
            redact_callback_url(&url)
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(HandlerError::bad_request(format!(
            "invalid callback URL `{}`: completions are delivered over http or https",
            redact_callback_url(&url)
        )));
    }
    Ok(Some(Callback::Url {
        url,
        headers: protocol::callback_headers(&parts.headers),
    }))
}

/// Everything of a start request but its body, checked.
pub(super) fn start(
    parts: &Parts,
    service: String,
    operation: String,
) -> Result<StartRequest, HandlerError> {
    let headers = &parts.headers;
    let found = StartHeaders::of(headers);
    let links = if found.links {
        protocol::links_from_headers(headers)
            .map_err(|e| HandlerError::bad_request(format!("invalid `Nexus-Link` header: {e}")))?
    } else {
        Vec::new()
    };
    let request_deadline = request_deadline(found.request_timeout)?;
    let operation_timeout = timeout(found.operation_timeout, &header::OPERATION_TIMEOUT)?;
    let request_id = value_text(found.request_id, &header::REQUEST_ID)?
        .unwrap_or_default()
        .to_owned();
    Ok(StartRequest {
        service,
        operation,
        request_id,
        headers: protocol::handler_headers(headers),
        links,
        callback: callback(parts)?,
        request_deadline,
        operation_timeout,
        input: crate::codec::Content::empty(),
    })
}

/// A cancel request. The token comes from the deprecated path form, else the
/// `Nexus-Operation-Token` header, else the `token` query parameter; it is kept out of the
/// headers the handler sees.
pub(super) fn cancel(
    parts: &Parts,
    service: String,
    operation: String,
    path_token: Option<String>,
) -> Result<CancelRequest, HandlerError> {
    let headers = &parts.headers;
    let header_token = text(headers, &header::OPERATION_TOKEN)?
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let token = path_token
        .or(header_token)
        .or_else(|| protocol::query_param(parts.uri.query(), protocol::TOKEN_QUERY))
        .ok_or_else(|| {
            HandlerError::bad_request(
                "missing operation token: send it in the `Nexus-Operation-Token` header or the \
                 `token` query parameter",
            )
        })?;
    let mut handler_headers = protocol::handler_headers(headers);
    handler_headers.remove(header::OPERATION_TOKEN.as_str());
    Ok(CancelRequest {
        service,
        operation,
        token,
        headers: handler_headers,
        request_deadline: request_deadline(header::first(headers, &header::REQUEST_TIMEOUT))?,
    })
}
