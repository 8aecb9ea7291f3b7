//! The Nexus RPC over HTTP wire protocol, as Temporal and the Go reference speak it, without any
//! HTTP machinery: header names, paths and escaping, links, durations, timestamps, the mapping
//! between `Content-*` headers and [`Content`](crate::codec::Content), and the mapping between
//! errors and HTTP statuses and Failure bodies. It depends only on light crates (`http`,
//! `httpdate`, `humantime`, `percent-encoding`), so it is always compiled; the servers and the
//! transport of the `http` feature are thin layers over it.
//!
//! Decisions where the protocol leaves a choice are documented on the items concerned:
//! [`FailureFormat`] (envelope or cause), [`content_from_headers`] (`Content-Length` is framing,
//! not content), [`encode_link`] (commas are refused), [`parse_route`] (path shapes).

mod completion;
mod content;
mod duration;
mod failure;
mod link;
mod path;
mod response;
mod timestamp;

pub use completion::{CompletionRequest, build_completion_request, parse_completion};
pub use content::{
    HeaderError, add_callback_headers, add_content_headers, add_nexus_headers, callback_headers,
    content_from_headers, handler_headers,
};
pub use duration::{DurationError, MAX_TIMEOUT, format_duration, parse_duration};
pub use failure::{ErrorResponse, FailureFormat, handler_error_response, start_error_response};
pub use link::{LinkError, add_links_to_headers, decode_link, encode_link, links_from_headers};
#[cfg(feature = "http")]
pub(crate) use path::RouteShape;
pub use path::{Route, cancel_path, escape_segment, parse_route, query_param, start_path};
pub use response::{
    OperationInfo, error_from_response, parse_cancel_response, parse_start_response,
};
pub use timestamp::{
    TimestampError, format_http_date, format_rfc3339, parse_http_date, parse_rfc3339,
};

/// Names of the headers of the protocol (lower-case, as `http` stores them).
pub mod header {
    use http::HeaderName;

    /// The request id of a start request; handlers deduplicate starts on it.
    pub const REQUEST_ID: HeaderName = HeaderName::from_static("nexus-request-id");
    /// How long the caller waits for this request: `<number>(ms|s|m)`.
    pub const REQUEST_TIMEOUT: HeaderName = HeaderName::from_static("request-timeout");
    /// How long the whole operation may still take (start requests).
    pub const OPERATION_TIMEOUT: HeaderName = HeaderName::from_static("operation-timeout");
    /// A link; may appear any number of times.
    pub const LINK: HeaderName = HeaderName::from_static("nexus-link");
    /// `succeeded`, `failed` or `canceled`: on 424 responses and completion callbacks.
    pub const OPERATION_STATE: HeaderName = HeaderName::from_static("nexus-operation-state");
    /// The operation token: on cancel requests and completion callbacks.
    pub const OPERATION_TOKEN: HeaderName = HeaderName::from_static("nexus-operation-token");
    /// The operation token under its pre-token name (older senders of completions).
    pub const OPERATION_ID: HeaderName = HeaderName::from_static("nexus-operation-id");
    /// When the operation started, as an HTTP-date (completion callbacks).
    pub const OPERATION_START_TIME: HeaderName =
        HeaderName::from_static("nexus-operation-start-time");
    /// When the operation ended, as RFC 3339 (completion callbacks).
    pub const OPERATION_CLOSE_TIME: HeaderName =
        HeaderName::from_static("nexus-operation-close-time");
    /// Deprecated retry override of a HandlerError response, still written and read.
    pub const REQUEST_RETRYABLE: HeaderName = HeaderName::from_static("nexus-request-retryable");
    /// Temporal's negotiation of the Failure format: `true` when the caller understands
    /// HandlerError and OperationError envelopes (see [`FailureFormat`](super::FailureFormat)).
    pub const FAILURE_SUPPORT: HeaderName =
        HeaderName::from_static("temporal-nexus-failure-support");

    /// Prefix of the headers a handler must send back, without it, on the completion callback.
    pub const CALLBACK_PREFIX: &str = "nexus-callback-";
    /// Prefix of the headers that describe a payload.
    pub const CONTENT_PREFIX: &str = "content-";

    /// Maps of at most this many values are searched by comparing names.
    const SCANNED: usize = 16;

    /// The first value of header `name` in `headers`, as [`HeaderMap::get`](http::HeaderMap::get) gives it.
    ///
    /// A request carries a handful of headers, and comparing their names is cheaper than
    /// hashing the name looked for: `http` hashes every byte of a name that is not one of its
    /// standard ones, a few hundred instructions for `temporal-nexus-failure-support`, and a
    /// request's path looks up several such names, most of them absent. A larger map is
    /// looked up by hash.
    pub(crate) fn first<'a>(
        headers: &'a http::HeaderMap,
        name: &HeaderName,
    ) -> Option<&'a http::HeaderValue> {
        if headers.len() <= SCANNED {
            headers.iter().find_map(|(n, v)| (n == name).then_some(v))
        } else {
            headers.get(name)
        }
    }

    /// Every value of header `name` in `headers`, in order, as
    /// [`HeaderMap::get_all`](http::HeaderMap::get_all) gives them (see [`first`] for why a
    /// small map is scanned).
    pub(crate) fn all<'a>(
        headers: &'a http::HeaderMap,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = &'a http::HeaderValue> + 'a {
        let (scanned, hashed) = if headers.len() <= SCANNED {
            let values = headers
                .iter()
                .filter_map(move |(n, v)| (n == name).then_some(v));
            (Some(values), None)
        } else {
            (None, Some(headers.get_all(name).iter()))
        };
        scanned
            .into_iter()
            .flatten()
            .chain(hashed.into_iter().flatten())
    }

    #[cfg(test)]
    mod tests {
        use http::{HeaderMap, HeaderName, HeaderValue};

        use super::{LINK, REQUEST_ID, SCANNED, all, first};

        fn map(filler: usize) -> HeaderMap {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::HOST, HeaderValue::from_static("h"));
            headers.append(LINK, HeaderValue::from_static("one"));
            for i in 0..filler {
                let name = HeaderName::try_from(format!("x-filler-{i}")).unwrap();
                headers.insert(name, HeaderValue::from_static("f"));
            }
            headers.append(LINK, HeaderValue::from_static("two"));
            headers.insert(REQUEST_ID, HeaderValue::from_static("r-1"));
            headers
        }

        #[test]
        fn small_and_large_maps_answer_as_the_map_does() {
            for filler in [0, 3, SCANNED, SCANNED * 2] {
                let headers = map(filler);
                for name in [
                    REQUEST_ID,
                    LINK,
                    http::header::HOST,
                    http::header::CONTENT_TYPE,
                    HeaderName::from_static("x-filler-2"),
                ] {
                    assert_eq!(first(&headers, &name), headers.get(&name), "{name}");
                    assert_eq!(
                        all(&headers, &name).collect::<Vec<_>>(),
                        headers.get_all(&name).iter().collect::<Vec<_>>(),
                        "{name}"
                    );
                }
                assert_eq!(all(&headers, &LINK).count(), 2);
            }
        }
    }
}

/// The query parameter that carries the callback URL of a start request.
pub const CALLBACK_QUERY: &str = "callback";
/// The query parameter that may carry the operation token of a cancel request.
pub const TOKEN_QUERY: &str = "token";
/// The `User-Agent` this crate sends.
pub const USER_AGENT: &str = concat!("nexus-rs/", env!("CARGO_PKG_VERSION"));
