//! Metrics (feature `metrics`): exact values after known calls, read back from `metrics-util`'s
//! debugging recorder. It is installed as this test binary's global recorder (the drivers run as
//! tasks, possibly on other threads, so a thread-local recorder would miss them), and the binary
//! has this one test.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use nexus_runtime::client::EndpointConfig;
use nexus_runtime::machinery::{BreakerConfig, Jitter, RetryPolicy};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{
    CallError, Client, HandlerError, OperationContext, OperationError, OperationResult,
    nexus_service,
};

/// Operations with known outcomes.
#[nexus_service(name = "known.v1")]
pub trait Known {
    /// Succeeds synchronously.
    async fn ok(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Fails synchronously (an OperationError: not retried).
    async fn fail(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// UNAVAILABLE once (retried), then succeeds.
    async fn flaky(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Async: completes after 10 s.
    async fn slow(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

#[derive(Default)]
struct Desk {
    flaky_calls: Arc<AtomicU32>,
}

impl Known for Desk {
    async fn ok(&self, _ctx: OperationContext, input: String) -> OperationResult<String> {
        Ok(input.into())
    }
    async fn fail(&self, _ctx: OperationContext, _input: String) -> OperationResult<String> {
        Err(OperationError::failed("no").into())
    }
    async fn flaky(&self, _ctx: OperationContext, input: String) -> OperationResult<String> {
        if self.flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(HandlerError::unavailable("not yet").into());
        }
        Ok(input.into())
    }
    async fn slow(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        ctx.start_async(move |_work| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(input)
        })
    }
}

type Metrics = Vec<(metrics_util::CompositeKey, DebugValue)>;

/// Everything recorded so far. The debugging recorder drains what it reads (counters, gauges and
/// histograms are reset to zero), so its snapshots are added to the previous totals (the gauges
/// here move by increments only).
fn snapshot(snapshotter: &Snapshotter, totals: &mut Metrics) {
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match totals.iter_mut().find(|(k, _)| *k == key) {
            None => totals.push((key, value)),
            Some((_, total)) => match (total, value) {
                (DebugValue::Counter(t), DebugValue::Counter(n)) => *t += n,
                (DebugValue::Gauge(t), DebugValue::Gauge(g)) => {
                    *t = (t.into_inner() + g.into_inner()).into()
                }
                (DebugValue::Histogram(t), DebugValue::Histogram(v)) => t.extend(v),
                _ => unreachable!("one kind per key"),
            },
        }
    }
}

/// The sum of the values of metric `name` of `kind` whose labels include `labels`.
fn value(metrics: &Metrics, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .iter()
        .filter(|(key, _)| key.kind() == kind && key.key().name() == name)
        .filter(|(key, _)| {
            labels.iter().all(|(k, v)| {
                key.key()
                    .labels()
                    .any(|label| label.key() == *k && label.value() == *v)
            })
        })
        .map(|(_, value)| match value {
            DebugValue::Counter(n) => *n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(values) => values.len() as f64,
        })
        .sum()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn known_calls_give_exact_metric_values() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    nexus_runtime::observe::metrics::describe();

    let dispatcher = Dispatcher::builder()
        .service(KnownService::handler(Desk::default()))
        .build();
    let client = Client::builder()
        .endpoint(
            "known",
            EndpointConfig::new(InProcessTransport::new(dispatcher.clone()))
                .retry(RetryPolicy::default())
                .breaker(BreakerConfig::disabled()),
        )
        .jitter(Jitter::seeded(7))
        .build();
    let known = KnownClient::new(client, "known");

    for i in 0..3 {
        assert_eq!(known.ok(format!("{i}")).await.unwrap(), format!("{i}"));
    }
    assert!(matches!(
        known.fail("x".into()).await,
        Err(CallError::Operation(_))
    ));
    assert_eq!(known.flaky("y".into()).await.unwrap(), "y");

    let mut totals = Metrics::new();
    let c = MetricKind::Counter;
    let g = MetricKind::Gauge;
    let h = MetricKind::Histogram;
    snapshot(&snapshotter, &mut totals);
    let s = &totals;
    let op = |name| ("nexus_operation", name);
    let start = ("method", "StartOperation");

    // Caller side: requests by outcome, their latencies, retries, operations by outcome.
    let outbound = "nexus_outbound_requests";
    assert_eq!(
        value(
            s,
            c,
            outbound,
            &[
                ("destination", "known"),
                op("ok"),
                start,
                ("outcome", "successful")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            s,
            c,
            outbound,
            &[op("fail"), ("outcome", "operation-unsuccessful:failed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            s,
            c,
            outbound,
            &[op("flaky"), ("outcome", "handler-error:UNAVAILABLE")]
        ),
        1.0
    );
    assert_eq!(
        value(s, c, outbound, &[op("flaky"), ("outcome", "successful")]),
        1.0
    );
    assert_eq!(value(s, c, outbound, &[]), 6.0);
    assert_eq!(value(s, h, "nexus_outbound_latency", &[op("ok")]), 3.0);
    assert_eq!(value(s, c, "nexus_outbound_retries", &[op("flaky")]), 1.0);
    assert_eq!(value(s, c, "nexus_outbound_retries", &[]), 1.0);
    assert_eq!(
        value(
            s,
            c,
            "nexus_operation_success",
            &[("nexus_endpoint", "known"), op("ok")]
        ),
        3.0
    );
    assert_eq!(value(s, c, "nexus_operation_success", &[op("flaky")]), 1.0);
    assert_eq!(value(s, c, "nexus_operation_fail", &[op("fail")]), 1.0);
    assert_eq!(
        value(s, h, "nexus_operation_schedule_to_close_latency", &[]),
        5.0
    );
    assert_eq!(value(s, g, "nexus_outbound_in_flight", &[]), 0.0);
    assert_eq!(value(s, g, "nexus_pending_operations", &[]), 0.0);

    // Handler side: requests by outcome (Temporal's frontend formats) and their latencies.
    let handled = "nexus_requests";
    let handle_start = ("method", "StartNexusOperation");
    assert_eq!(
        value(
            s,
            c,
            handled,
            &[
                ("nexus_service", "known.v1"),
                op("ok"),
                handle_start,
                ("outcome", "sync_success")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(s, c, handled, &[op("fail"), ("outcome", "operation_error")]),
        1.0
    );
    assert_eq!(
        value(
            s,
            c,
            handled,
            &[op("flaky"), ("outcome", "handler_error:UNAVAILABLE")]
        ),
        1.0
    );
    assert_eq!(
        value(s, c, handled, &[op("flaky"), ("outcome", "sync_success")]),
        1.0
    );
    assert_eq!(value(s, h, "nexus_latency", &[]), 6.0);

    // An async operation: running and pending while it runs, counted when it ends.
    let handle = known.slow("z".into()).start().await.unwrap();
    tokio::task::yield_now().await;
    snapshot(&snapshotter, &mut totals);
    let s = &totals;
    assert_eq!(
        value(s, c, outbound, &[op("slow"), ("outcome", "pending")]),
        1.0
    );
    assert_eq!(
        value(s, c, handled, &[op("slow"), ("outcome", "async_success")]),
        1.0
    );
    assert_eq!(value(s, g, "nexus_running_operations", &[op("slow")]), 1.0);
    assert_eq!(
        value(s, g, "nexus_pending_operations", &[("state", "started")]),
        1.0
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(handle.result().await.unwrap(), "z");
    tokio::task::yield_now().await;
    snapshot(&snapshotter, &mut totals);
    let s = &totals;
    assert_eq!(value(s, g, "nexus_running_operations", &[op("slow")]), 0.0);
    assert_eq!(value(s, g, "nexus_pending_operations", &[]), 0.0);
    assert_eq!(value(s, c, "nexus_operation_success", &[op("slow")]), 1.0);
}
