//! What every server route shares: reading bodies within a limit, and writing Failure answers.

use std::future::Future as _;
use std::task::Poll;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::error::HandlerError;
use crate::protocol::{self, ErrorResponse, FailureFormat};

/// The default limit on request bodies: 2 MiB, Temporal's payload limit.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// After the limit is exceeded, at most this much more is read (and dropped) so the peer gets
/// the answer instead of a reset connection; beyond it the connection is closed.
const DRAIN_CAP: usize = 8 * 1024 * 1024;

/// A response with exactly these headers: unlike axum's tuple responses, no `Content-Type` is
/// added, so a result without one (Nexus's "no value") goes out without one.
pub(crate) fn response(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Turns a protocol error answer into an axum response.
pub(crate) fn error_response(answer: ErrorResponse) -> Response {
    let body = answer.body();
    response(answer.status, answer.headers, body)
}

/// A HandlerError as an axum response.
pub(crate) fn handler_error(error: &HandlerError, format: FailureFormat) -> Response {
    error_response(protocol::handler_error_response(error, format))
}

/// The answer to a method other than POST: BAD_REQUEST (as Temporal answers) with `Allow: POST`.
pub(crate) fn wrong_method(method: &Method, format: FailureFormat) -> Response {
    let error = HandlerError::bad_request(format!(
        "invalid request method {method}: Nexus requests use POST"
    ));
    let mut response = handler_error(&error, format);
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// `n` bytes for people: `2 MiB`, `1.5 KiB`, `17 bytes`.
fn human_size(n: usize) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f >= KIB * KIB {
        format!("{} MiB", trim(f / (KIB * KIB)))
    } else if f >= KIB {
        format!("{} KiB", trim(f / KIB))
    } else {
        format!("{n} bytes")
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Reads a request body (with `Content-Length` or chunked) of at most `limit` bytes, within
/// `timeout`.
///
/// A larger body is BAD_REQUEST naming the limit: HTTP's 413 is not a Nexus error type, and
/// Temporal's frontend answers oversized input with 400 too. A body still arriving after
/// `timeout` is REQUEST_TIMEOUT (408) naming the limit.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, HandlerError> {
    let reading = read_body_within(body, headers, limit);
    tokio::pin!(reading);
    // A small body has usually arrived with the request head: read it without setting a timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(reading.as_mut().poll(cx))).await;
    if let Poll::Ready(read) = first {
        return read;
    }
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or_else(|_| {
            Err(HandlerError::request_timeout(format!(
                "the request body was not received within the body read timeout ({})",
                humantime::format_duration(timeout)
            )))
        })
}

/// The chunks of a body read so far: a body of one chunk is kept as it came, not copied.
enum Received {
    Nothing,
    One(Bytes),
    Several(BytesMut),
}

impl Received {
    fn len(&self) -> usize {
        match self {
            Self::Nothing => 0,
            Self::One(bytes) => bytes.len(),
            Self::Several(buffer) => buffer.len(),
        }
    }

    /// Adds `chunk`; `capacity` is what to reserve when a second chunk comes.
    fn push(&mut self, chunk: Bytes, capacity: usize) {
        *self = match std::mem::replace(self, Self::Nothing) {
            Self::Nothing => Self::One(chunk),
            Self::One(first) => {
                let mut buffer = BytesMut::with_capacity(capacity.max(first.len() + chunk.len()));
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&chunk);
                Self::Several(buffer)
            }
            Self::Several(mut buffer) => {
                buffer.extend_from_slice(&chunk);
                Self::Several(buffer)
            }
        };
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Nothing => Bytes::new(),
            Self::One(bytes) => bytes,
            Self::Several(buffer) => buffer.freeze(),
        }
    }
}

async fn read_body_within(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, HandlerError> {
    let too_large = || {
        HandlerError::bad_request(format!(
            "the request body exceeds the limit of {limit} bytes ({})",
            human_size(limit)
        ))
    };
    let declared = crate::protocol::header::first(headers, &http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let capacity = declared.unwrap_or(0).min(limit);
    let mut stream = body.into_data_stream();
    let mut received = Received::Nothing;
    let mut over = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| HandlerError::bad_request(format!("cannot read the request body: {e}")))?;
        if over > 0 || received.len() + chunk.len() > limit {
            over += chunk.len();
            if over > DRAIN_CAP {
                break;
            }
            continue;
        }
        if !chunk.is_empty() {
            received.push(chunk, capacity);
        }
    }
    if over > 0 {
        return Err(too_large());
    }
    Ok(received.into_bytes())
}

/// An empty answer with `status`.
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(DEFAULT_BODY_LIMIT), "2 MiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(17), "17 bytes");
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn bodies_over_the_limit_are_bad_requests_naming_it() {
        let headers = HeaderMap::new();
        let ok = read_body(Body::from("12345"), &headers, 5, SECOND)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"12345");
        let err = read_body(Body::from("123456"), &headers, 5, SECOND)
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            "the request body exceeds the limit of 5 bytes (5 bytes)"
        );
    }

    #[tokio::test]
    async fn bodies_in_several_chunks_are_read_whole_within_the_limit() {
        let body = || {
            let chunks = ["12", "", "345", "6"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
            Body::from_stream(futures::stream::iter(chunks))
        };
        let headers = HeaderMap::new();
        let whole = read_body(body(), &headers, 6, SECOND).await.unwrap();
        assert_eq!(&whole[..], b"123456");
        let err = read_body(body(), &headers, 5, SECOND).await.unwrap_err();
        assert_eq!(
            err.message,
            "the request body exceeds the limit of 5 bytes (5 bytes)"
        );
        let empty = read_body(Body::empty(), &headers, 5, SECOND).await.unwrap();
        assert!(empty.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn bodies_slower_than_the_timeout_are_request_timeouts_naming_it() {
        let stalled = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from("12")) })
            .chain(futures::stream::pending());
        let err = read_body(
            Body::from_stream(stalled),
            &HeaderMap::new(),
            100,
            Duration::from_millis(1500),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.error_type,
            crate::error::HandlerErrorType::RequestTimeout
        );
        assert_eq!(
            err.message,
            "the request body was not received within the body read timeout (1s 500ms)"
        );
    }
}
