//! OpenTelemetry (feature `otel`): the runtime's spans exported over OTLP, and trace context
//! written and read with OpenTelemetry's W3C TraceContext propagator.
//!
//! The runtime's spans are `tracing` spans; the `tracing-opentelemetry` layer turns them into
//! OpenTelemetry spans. Install it with [`layer`] beside the application's other layers, on a
//! tracer provider the application owns ([`otlp_provider`] builds one that exports to an OTLP
//! collector over HTTP):
//!
//! ```no_run
//! use nexus_runtime::observe::otel;
//! use tracing_subscriber::layer::SubscriberExt as _;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // OTLP over HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318).
//! let provider = otel::otlp_provider("payments")?;
//! let subscriber = tracing_subscriber::registry().with(otel::layer(&provider, "payments"));
//! tracing::subscriber::set_global_default(subscriber)?;
//! // ... run the application; before exiting, flush what is still buffered:
//! provider.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! With the layer installed, every request the runtime sends names the span it was sent from
//! as its parent (`traceparent`), and every request it receives becomes the parent of the span
//! that handles it. Without it (or without the feature), the trace id is still carried from hop
//! to hop (see [`TraceContext`]).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};

use super::trace_context::{TRACEPARENT, TRACESTATE, TraceContext};

pub use opentelemetry_otlp::ExporterBuildError;
/// The OpenTelemetry crates this feature is built on, in the versions it uses: the API, the SDK
/// (tracer providers, exporters, the in-memory exporter of its `testing` feature), the OTLP
/// exporter and the `tracing` bridge.
pub use {opentelemetry, opentelemetry_otlp, opentelemetry_sdk, tracing_opentelemetry};

/// A tracer provider that exports spans in batches to an OTLP collector over HTTP (protobuf),
/// as the standard `OTEL_EXPORTER_OTLP_*` environment variables configure it (endpoint
/// `http://localhost:4318` by default), with `service.name` set to `service_name`.
///
/// Call [`SdkTracerProvider::shutdown`] before the process exits, to flush the last batch.
pub fn otlp_provider(service_name: &str) -> Result<SdkTracerProvider, ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// The `tracing` layer that records the runtime's spans (and the application's) as OpenTelemetry
/// spans of `provider`, under the instrumentation scope `scope`.
pub fn layer<S>(provider: &SdkTracerProvider, scope: &str) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(scope.to_owned()))
}

/// The trace context of `span` as OpenTelemetry knows it (written by the TraceContext
/// propagator), if an OpenTelemetry layer records it.
pub(crate) fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let parent = carrier.get(TRACEPARENT)?;
    TraceContext::parse(parent, carrier.get(TRACESTATE).map(String::as_str))
}

/// Makes `ctx` the remote parent of `span` (read by the TraceContext propagator).
pub(crate) fn set_parent(span: &tracing::Span, ctx: &TraceContext) {
    if span.is_disabled() {
        return;
    }
    let mut carrier = HashMap::new();
    carrier.insert(TRACEPARENT.to_owned(), ctx.traceparent());
    if let Some(state) = ctx.tracestate() {
        carrier.insert(TRACESTATE.to_owned(), state.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    // Refused only once the span has started, which it has not here.
    let _ = span.set_parent(parent);
}
