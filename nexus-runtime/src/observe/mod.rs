//! Observability: the spans every call opens, W3C trace context on every hop, and (feature
//! `metrics`) metrics.
//!
//! The runtime only *emits*: spans through `tracing`, metrics through the `metrics` facade.
//! The application chooses where they go (a `tracing-subscriber` formatter, OpenTelemetry with
//! the `otel` feature, a Prometheus recorder...). Without a subscriber or a recorder, nothing is
//! formatted or allocated for them.
//!
//! # Spans
//!
//! All spans are at level `INFO`, with target `nexus_runtime::observe`; their fields follow the
//! attribute names of Temporal's server (`nexus.service`, `nexus.operation`, `nexus.endpoint`,
//! `nexus.request_id`), and `otel.name` carries the span names of Temporal's SDK interceptors, so
//! traces read the same in a backend whichever side is Temporal.
//!
//! | span | side | parent | fields |
//! |---|---|---|---|
//! | `nexus.call` (`otel.name` = `StartNexusOperation:<service>/<operation>`) | caller | the current span (the handler's, for a call made inside a handler) | `nexus.endpoint`, `nexus.service`, `nexus.operation`, `nexus.request_id`, `nexus.token` (once started async), `nexus.state` (the final state: `succeeded`, `failed`, `canceled`, `timed_out`) |
//! | `nexus.attempt` | caller | `nexus.call` | `nexus.attempt` (1, 2, ...), `nexus.outcome` (`sync`, `async`, or the error: `handler_error:<TYPE>`, `operation_error:<state>`, `transport_error`, `timeout`), `nexus.next_delay_ms` (the backoff before the next attempt, when there is one) |
//! | `nexus.cancel` | caller | `nexus.call` | `nexus.attempt`, `nexus.outcome` (`requested` or the error) |
//! | `nexus.handle` (`otel.name` = `RunStartNexusOperationHandler:…` / `RunCancelNexusOperationHandler:…`) | handler | the caller's `traceparent` | `nexus.method` (`start`, `cancel`), `nexus.service`, `nexus.operation`, `nexus.request_id`, `nexus.principal`, `nexus.token` (async starts and cancels), `nexus.answer` (`sync`, `async`, `handler_error:<TYPE>`, `operation_error:<state>`, `cancel_requested`) |
//! | `nexus.work` | handler | `nexus.handle` (or the stored `traceparent` when resumed) | `nexus.service`, `nexus.operation`, `nexus.token`, `nexus.resumed`, `nexus.state` (how it ended) |
//! | `nexus.deliver` | handler | the `traceparent` stored with the callback | `nexus.token`, `nexus.state`, `nexus.attempts`, `nexus.outcome` (`delivered` or the error) |
//! | `nexus.completion` | caller | the `traceparent` of the completion request | `nexus.callback_id`, `nexus.token`, `nexus.state`, `nexus.outcome` (`accepted` or the error) |
//!
//! The driver of each operation runs inside its `nexus.call` span (also when it runs as a task of
//! its own), and the handler's operation method and async work run inside `nexus.handle` and
//! `nexus.work`: a call made from a handler is a child of the handler's span, with no code in
//! the handler.
//!
//! # Trace context
//!
//! Every start and cancel request carries `traceparent` (and `tracestate`) as Nexus headers,
//! read by the handler side; the handler stores the context with the operation's callback, so the
//! completion request (sent at once, or later by the outbox, even after a restart) carries the
//! same trace. See [`TraceContext`] for where the context comes from with and without the `otel`
//! feature. A Temporal server forwards the headers to its workers and back, so the trace
//! survives a hop through Temporal.

pub mod metrics;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
pub(crate) mod outcome;
pub(crate) mod spans;
mod trace_context;

pub use trace_context::{TRACEPARENT, TRACESTATE, TraceContext};
pub(crate) use trace_context::{extract, inject, inject_callback, scope};
#[cfg(feature = "http")]
pub(crate) use trace_context::{extract_http, span_context};
