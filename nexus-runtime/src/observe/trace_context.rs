//! W3C trace context: the `traceparent` and `tracestate` headers every request carries, so that
//! one trace covers a caller, the handlers it calls, the calls those make, and the completions
//! that come back.
//!
//! Nexus headers are a flat string map, and Temporal's SDKs put the W3C keys in it as they are
//! (`traceparent`, `tracestate`); a Temporal server forwards them to the worker. This module reads
//! and writes those keys.
//!
//! Where the context comes from, when a request goes out:
//! - with the `otel` feature and a `tracing-opentelemetry` layer installed, from the span the
//!   request is made in (the OpenTelemetry TraceContext propagator writes the headers);
//! - otherwise from the context the enclosing handler received ([`TraceContext::current`]): the
//!   trace id is kept, and each outgoing request gets a fresh parent id, so a chain of services
//!   keeps one trace id without any tracing backend.

use std::fmt::{self, Write as _};
use std::future::Future;

use futures::future::Either;
use tokio::task::futures::TaskLocalFuture;

use crate::operation::Headers;

/// The header that carries the trace id, the parent span id and the sampling flag.
pub const TRACEPARENT: &str = "traceparent";
/// The header that carries vendor-specific trace state, passed along unchanged.
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` passed along (the W3C limit); a longer one is dropped.
const MAX_TRACESTATE_BYTES: usize = 512;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// One W3C trace context: which trace a request belongs to and which span it comes from.
///
/// ```
/// use nexus_runtime::observe::TraceContext;
/// let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// let ctx = TraceContext::parse(parent, Some("congo=t61rcWkgMzE")).unwrap();
/// assert_eq!(ctx.trace_id(), "0af7651916cd43dd8448eb211c80319c");
/// assert_eq!(ctx.parent_id(), "b7ad6b7169203331");
/// assert!(ctx.sampled());
/// assert_eq!(ctx.traceparent(), parent);
/// // A child keeps the trace and names a new parent.
/// let child = ctx.child();
/// assert_eq!(child.trace_id(), ctx.trace_id());
/// assert_ne!(child.parent_id(), ctx.parent_id());
/// assert!(TraceContext::parse("00-00000000000000000000000000000000-b7ad6b7169203331-01", None).is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
    state: Option<Box<str>>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent())
            .field("tracestate", &self.state)
            .finish()
    }
}

impl TraceContext {
    /// A context from its parts; `None` if the trace id or the parent id is zero (invalid in W3C).
    pub fn new(trace_id: u128, parent_id: u64, sampled: bool) -> Option<Self> {
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            flags: u8::from(sampled),
            state: None,
        })
    }

    /// Parses a `traceparent` header (and its `tracestate`), as the W3C recommendation says: a
    /// malformed or all-zero one is `None` (the request then starts no trace of its own here); a
    /// `tracestate` that is too long or not visible ASCII is dropped.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let value = traceparent.trim_matches([' ', '\t']).as_bytes();
        if value.len() < 55 {
            return None;
        }
        let version = hex(&value[0..2])?;
        // Version 00 is exactly 55 bytes; later versions may append fields after a dash.
        if version == 0xff || (version == 0 && value.len() != 55) {
            return None;
        }
        if value.len() > 55 && value[55] != b'-' {
            return None;
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let trace_id = hex(&value[3..35])?;
        let parent_id = u64::try_from(hex(&value[36..52])?).ok()?;
        let flags = u8::try_from(hex(&value[53..55])?).ok()?;
        let mut ctx = Self::new(trace_id, parent_id, false)?;
        ctx.flags = flags;
        ctx.state = tracestate
            .map(|s| s.trim_matches([' ', '\t']))
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= MAX_TRACESTATE_BYTES
                    && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(Into::into);
        Some(ctx)
    }

    /// The context in `headers` (lower-case names, as Nexus headers are kept), if there is a
    /// valid one.
    pub fn from_headers(headers: &Headers) -> Option<Self> {
        let parent = headers.get(TRACEPARENT)?;
        Self::parse(parent, headers.get(TRACESTATE).map(String::as_str))
    }

    /// The context received by the handler the current task runs for (its start request's
    /// `traceparent`), if any: the parent of the calls it makes.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The same trace, with a new random parent id: the context of a request sent from here.
    pub fn child(&self) -> Self {
        let parent_id = loop {
            let id = rand::random::<u64>();
            if id != 0 {
                break id;
            }
        };
        Self {
            parent_id,
            ..self.clone()
        }
    }

    /// The trace id, as 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The parent span id, as 16 lower-case hex digits.
    pub fn parent_id(&self) -> String {
        format!("{:016x}", self.parent_id)
    }

    /// The trace id as a number.
    pub fn trace_id_u128(&self) -> u128 {
        self.trace_id
    }

    /// The parent span id as a number.
    pub fn parent_id_u64(&self) -> u64 {
        self.parent_id
    }

    /// Whether the caller sampled (records) this trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The `tracestate` passed along with it.
    pub fn tracestate(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// Sets the `tracestate` (dropped if too long or not visible ASCII).
    #[must_use]
    pub fn with_tracestate(mut self, state: Option<&str>) -> Self {
        self.state = state
            .filter(|s| {
                s.len() <= MAX_TRACESTATE_BYTES && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(Into::into);
        self
    }

    /// The `traceparent` header value (version 00).
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        let _ = write!(
            out,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        );
        out
    }

    /// Writes `traceparent` (and `tracestate`, or removes a stale one) into `headers`.
    pub fn write_to(&self, headers: &mut Headers) {
        headers.insert(TRACEPARENT.to_owned(), self.traceparent());
        match &self.state {
            Some(state) => {
                headers.insert(TRACESTATE.to_owned(), state.to_string());
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
    }

    /// How many header bytes [`write_to`](Self::write_to) adds (names and values).
    pub(crate) fn header_bytes(&self) -> usize {
        TRACEPARENT.len()
            + 55
            + self
                .state
                .as_ref()
                .map_or(0, |s| TRACESTATE.len() + s.len())
    }
}

/// `future` run with a trace context as the current one of its task, or as it is (see [`scope`]).
pub(crate) type Scoped<F> = Either<TaskLocalFuture<TraceContext, F>, F>;

/// Runs `future` with `ctx` as the [current](TraceContext::current) context of its task (as is,
/// without one). Not an `async fn`: one of those would hold `future` twice (as its argument and
/// inside the branch it awaits), and this one wraps requests' futures, which are large.
pub(crate) fn scope<F: Future>(ctx: Option<TraceContext>, future: F) -> Scoped<F> {
    match ctx {
        Some(ctx) => Either::Left(CURRENT.scope(ctx, future)),
        None => Either::Right(future),
    }
}

/// The context to send with a request made inside `span` by an operation that inherited
/// `inherited` (see the module's documentation); `None` when there is no trace to continue.
pub(crate) fn outgoing(
    span: &tracing::Span,
    inherited: Option<&TraceContext>,
) -> Option<TraceContext> {
    span_context(span).or_else(|| inherited.map(TraceContext::child))
}

/// Writes the context of a request made inside `span` into its headers (see [`outgoing`]);
/// leaves them alone when there is no trace to continue.
pub(crate) fn inject(
    span: &tracing::Span,
    inherited: Option<&TraceContext>,
    headers: &mut Headers,
) {
    if let Some(ctx) = outgoing(span, inherited) {
        ctx.write_to(headers);
    }
}

/// Adds the trace context of the request being handled (the current span's with the `otel`
/// feature, else a child of the [current](TraceContext::current) one) to a callback's headers, so
/// that its completion continues the trace; left out if the headers would grow beyond what the
/// callback guard accepts.
pub(crate) fn inject_callback(headers: &mut Headers) {
    let current = TraceContext::current();
    let Some(ctx) = outgoing(&tracing::Span::current(), current.as_ref()) else {
        return;
    };
    let existing: usize = headers
        .iter()
        .filter(|(k, _)| k.as_str() != TRACEPARENT && k.as_str() != TRACESTATE)
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if existing + ctx.header_bytes() <= crate::security::MAX_CALLBACK_HEADER_BYTES {
        ctx.write_to(headers);
    }
}

/// The span's own context, as OpenTelemetry knows it (`None` without the `otel` feature, or for a
/// span no OpenTelemetry layer records).
pub(crate) fn span_context(span: &tracing::Span) -> Option<TraceContext> {
    #[cfg(feature = "otel")]
    return super::otel::context_of(span);
    #[cfg(not(feature = "otel"))]
    {
        let _ = span;
        None
    }
}

/// [`extract`] from HTTP headers.
#[cfg(feature = "http")]
pub(crate) fn extract_http(
    span: &tracing::Span,
    headers: &http::HeaderMap,
) -> Option<TraceContext> {
    let parent = headers.get(TRACEPARENT)?.to_str().ok()?;
    let state = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
    let ctx = TraceContext::parse(parent, state)?;
    #[cfg(feature = "otel")]
    super::otel::set_parent(span, &ctx);
    #[cfg(not(feature = "otel"))]
    let _ = span;
    Some(ctx)
}

/// Makes the context in `headers` the parent of `span` (with the `otel` feature; the trace id is
/// kept by [`scope`] either way), and returns it.
pub(crate) fn extract(span: &tracing::Span, headers: &Headers) -> Option<TraceContext> {
    let ctx = TraceContext::from_headers(headers)?;
    #[cfg(feature = "otel")]
    super::otel::set_parent(span, &ctx);
    #[cfg(not(feature = "otel"))]
    let _ = span;
    Some(ctx)
}

/// The value of `digits` lower-case hex digits (upper case is invalid in `traceparent`).
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_writes_back() {
        let ctx = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(ctx.traceparent(), VALID);
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut headers = Headers::new();
        ctx.write_to(&mut headers);
        assert_eq!(TraceContext::from_headers(&headers), Some(ctx));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad:?}");
        }
        // A later version may carry more fields.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
        assert!(TraceContext::parse(future, None).is_some());
    }

    #[test]
    fn drops_oversized_tracestate() {
        let long = "a=".to_owned() + &"b".repeat(600);
        let ctx = TraceContext::parse(VALID, Some(&long)).unwrap();
        assert_eq!(ctx.tracestate(), None);
        let ctx = TraceContext::parse(VALID, Some("rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(ctx.tracestate(), Some("rojo=00f067aa0ba902b7"));
    }

    #[tokio::test]
    async fn the_scope_is_current_inside_only() {
        let ctx = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(TraceContext::current(), None);
        let seen = scope(Some(ctx.clone()), async { TraceContext::current() }).await;
        assert_eq!(seen, Some(ctx));
    }
}
