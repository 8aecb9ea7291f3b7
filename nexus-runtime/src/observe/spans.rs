//! The spans the runtime opens (names and fields are documented in [`super`]).
//!
//! Every span is made with `tracing`'s macros: without a subscriber (or with one that filters
//! them out) a span is a disabled handle, and its fields are neither formatted nor recorded.
//! The OpenTelemetry name (`otel.name`, Temporal's span names) is formatted only for an enabled
//! span.

use std::fmt::Display;
use std::future::Future;

use futures::future::Either;
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::{Instrument as _, Span};

/// Runs a future inside one of these spans, when the span is enabled.
pub(crate) trait InSpan: Future + Sized {
    /// `self` inside `span` (entered at every poll), or `self` as it is when `span` is disabled
    /// (no subscriber records it). Entering a disabled span still costs a call at every poll and
    /// at the drop (`tracing`'s `log` fallback, which this crate's dependencies turn on), for
    /// nothing: about a thousand instructions per in-process call.
    fn in_span(self, span: Span) -> Either<Instrumented<Self>, Self> {
        if span.is_disabled() {
            Either::Right(self)
        } else {
            Either::Left(self.instrument(span))
        }
    }
}

impl<F: Future> InSpan for F {}

/// The target of every span and event of this module.
pub(crate) const TARGET: &str = "nexus_runtime::observe";

/// The name of the span [`call`] opens, which [`current_call`] looks for.
const CALL: &str = "nexus.call";

/// `nexus.call`: one operation on the caller side, from scheduling to its end. A child of the
/// current span (the handler's, for a call made inside a handler).
pub(crate) fn call(endpoint: &str, service: &str, operation: &str, request_id: &str) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        CALL,
        otel.name = Empty,
        otel.kind = "client",
        nexus.endpoint = endpoint,
        nexus.service = service,
        nexus.operation = operation,
        nexus.request_id = request_id,
        nexus.token = Empty,
        nexus.state = Empty,
    );
    name(&span, "StartNexusOperation", service, operation);
    span
}

/// The `nexus.call` span the calling code runs in (an operation's driver runs inside its own),
/// or a disabled span when it runs in none (its span was filtered out): never another span,
/// whose fields would then be recorded as the call's.
pub(crate) fn current_call() -> Span {
    let span = Span::current();
    if span.metadata().is_some_and(|m| m.name() == CALL) {
        span
    } else {
        Span::none()
    }
}

/// `nexus.attempt`: one start request of an operation (a child of its `nexus.call`).
pub(crate) fn attempt(call: &Span, attempt: u32) -> Span {
    tracing::info_span!(
        target: TARGET,
        parent: call,
        "nexus.attempt",
        otel.kind = "client",
        nexus.attempt = attempt,
        nexus.outcome = Empty,
        nexus.next_delay_ms = Empty,
    )
}

/// `nexus.cancel`: one cancel request of an operation (a child of its `nexus.call`).
pub(crate) fn cancel_attempt(call: &Span, attempt: u32) -> Span {
    tracing::info_span!(
        target: TARGET,
        parent: call,
        "nexus.cancel",
        otel.kind = "client",
        nexus.attempt = attempt,
        nexus.outcome = Empty,
    )
}

/// `nexus.handle`: one start or cancel request on the handler side (`method` is `start` or
/// `cancel`). Its parent is the caller's context (see `trace_context::extract`).
pub(crate) fn handle(
    method: &'static str,
    service: &str,
    operation: &str,
    request_id: Option<&str>,
    principal: &dyn Display,
) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "nexus.handle",
        otel.name = Empty,
        otel.kind = "server",
        nexus.method = method,
        nexus.service = service,
        nexus.operation = operation,
        nexus.request_id = request_id,
        nexus.principal = %principal,
        nexus.token = Empty,
        nexus.answer = Empty,
    );
    let kind = if method == "cancel" {
        "RunCancelNexusOperationHandler"
    } else {
        "RunStartNexusOperationHandler"
    };
    name(&span, kind, service, operation);
    span
}

/// `nexus.work`: the background work of an async operation, until its completion is recorded
/// (a child of the `nexus.handle` that started it, or of the caller's context when resumed).
pub(crate) fn work(service: &str, operation: &str, token: &str, resumed: bool) -> Span {
    tracing::info_span!(
        target: TARGET,
        "nexus.work",
        nexus.service = service,
        nexus.operation = operation,
        nexus.token = token,
        nexus.resumed = resumed,
        nexus.state = Empty,
    )
}

/// `nexus.completion`: a completion received by a callback receiver; its parent is the context
/// the handler sent with it.
#[cfg(feature = "http")]
pub(crate) fn completion(callback_id: &str, token: &str, state: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "nexus.completion",
        otel.kind = "server",
        nexus.callback_id = callback_id,
        nexus.token = token,
        nexus.state = state,
        nexus.outcome = Empty,
    )
}

/// `nexus.deliver`: one delivery of a completion by the completion sender (its parent is the
/// context stored with the callback).
#[cfg(feature = "http")]
pub(crate) fn deliver(token: &str, state: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "nexus.deliver",
        otel.kind = "client",
        nexus.token = token,
        nexus.state = state,
        nexus.attempts = Empty,
        nexus.outcome = Empty,
    )
}

/// Sets `otel.name` to Temporal's span name for the operation (only on an enabled span).
fn name(span: &Span, kind: &str, service: &str, operation: &str) {
    if !span.is_disabled() {
        span.record("otel.name", format!("{kind}:{service}/{operation}"));
    }
}

/// Records `value` as `field` of `span` when it is enabled (a display value is formatted only
/// then).
pub(crate) fn record(span: &Span, field: &'static str, value: impl Display) {
    if !span.is_disabled() {
        span.record(field, tracing::field::display(value));
    }
}
