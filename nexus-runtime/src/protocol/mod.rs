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
}

/// The query parameter that carries the callback URL of a start request.
pub const CALLBACK_QUERY: &str = "callback";
/// The query parameter that may carry the operation token of a cancel request.
pub const TOKEN_QUERY: &str = "token";
/// The `User-Agent` this crate sends.
pub const USER_AGENT: &str = concat!("nexus-rs/", env!("CARGO_PKG_VERSION"));
