//! Observability over loopback HTTP (feature `http`): the W3C trace context through a chain of
//! calls and across a handler's restart. Metrics and OpenTelemetry have binaries of their own
//! (`observe/metrics.rs`, `observe/otel.rs`): each installs process-wide state.

#[path = "../support/mod.rs"]
mod support;

pub mod trace;
pub mod trace_restart;
