//! OpenTelemetry (feature `otel`): the spans of a 3-level chain over HTTP on loopback, exported
//! to the SDK's in-memory exporter, form one tree, the completion's spans included. (A test binary
//! of its own: its subscriber is the default of its thread only, and no other test may race the
//! registration of the runtime's span callsites.)
#![cfg(all(feature = "http", feature = "otel"))]
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::server::CallbackListener;
use nexus_runtime::transport::HttpTransport;
use support::trace_chain::{MiddleClient, chain, parse};

/// With OpenTelemetry: the exported spans form one tree across three levels and the completion.
#[tokio::test(flavor = "current_thread")]
async fn spans_form_one_tree_with_opentelemetry() {
    use nexus_runtime::observe::otel;
    use otel::opentelemetry::trace::{SpanId, TraceId};
    use otel::opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(otel::layer(&provider, "observe-test"));
    // Current-thread runtime: every task (servers, drivers, work) sees this default.
    let _default = tracing::subscriber::set_default(subscriber);

    let (_leaf, middle) = chain().await;
    let callbacks = CallbackListener::bind_loopback().await.unwrap();
    let client = Client::builder()
        .endpoint("middle", HttpTransport::new(middle.url()).unwrap())
        .callback_url(callbacks.callback_url())
        .build();
    let _receiver = callbacks.serve(client.clone()).unwrap();
    let stub = MiddleClient::new(client, "middle");

    let root = tracing::info_span!("test.root");
    let (sync_seen, async_seen) = async {
        let sync_seen = stub.relay("x".into()).await.unwrap();
        let async_seen = stub.relay_async("y".into()).await.unwrap();
        (sync_seen, async_seen)
    }
    .instrument(root.clone())
    .await;
    drop(root);

    // Wait until the last spans (drivers, the work, the delivery) have ended.
    let wanted = |spans: &[SpanData]| {
        spans.iter().any(|s| s.name == "test.root")
            && spans.iter().filter(|s| s.name == "nexus.deliver").count() == 1
            && spans
                .iter()
                .filter(|s| s.name == "nexus.completion")
                .count()
                == 1
            && spans.iter().filter(|s| s.name == "nexus.work").count() == 1
            && spans
                .iter()
                .filter(|s| s.name.starts_with("StartNexusOperation:"))
                .count()
                == 4
    };
    let mut spans = Vec::new();
    for _ in 0..200 {
        spans = exporter.get_finished_spans().unwrap();
        if wanted(&spans) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(wanted(&spans), "spans: {:#?}", names(&spans));

    let root = one(&spans, "test.root", None);
    let trace: TraceId = root.span_context.trace_id();
    for span in &spans {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "{} is in another trace: {:#?}",
            span.name,
            spans
                .iter()
                .map(|s| (
                    &s.name,
                    s.span_context.trace_id(),
                    s.span_context.span_id(),
                    s.parent_span_id
                ))
                .collect::<Vec<_>>()
        );
    }
    let id = |s: &SpanData| s.span_context.span_id();

    // Sync: root → call → attempt → handle(middle) → call(leaf) → attempt → handle(leaf).
    let call = one(
        &spans,
        "StartNexusOperation:middle.v1/relay",
        Some(id(root)),
    );
    let attempt = one(&spans, "nexus.attempt", Some(id(call)));
    let handle = one(
        &spans,
        "RunStartNexusOperationHandler:middle.v1/relay",
        Some(id(attempt)),
    );
    let nested = children(&spans, "StartNexusOperation:leaf.v1/look", id(handle));
    assert_eq!(nested.len(), 1);
    let nested_attempt = one(&spans, "nexus.attempt", Some(id(nested[0])));
    let leaf = one(
        &spans,
        "RunStartNexusOperationHandler:leaf.v1/look",
        Some(id(nested_attempt)),
    );
    // What the handlers received names exactly those spans.
    let middle_saw = parse(sync_seen.middle.as_deref());
    assert_eq!(SpanId::from(middle_saw.parent_id_u64()), id(attempt));
    let leaf_saw = parse(sync_seen.leaf.as_deref());
    assert_eq!(SpanId::from(leaf_saw.parent_id_u64()), id(nested_attempt));
    assert_eq!(attr(call, "nexus.state").as_deref(), Some("succeeded"));
    assert_eq!(attr(attempt, "nexus.outcome").as_deref(), Some("sync"));
    assert_eq!(attr(handle, "nexus.answer").as_deref(), Some("sync"));
    assert_eq!(attr(leaf, "nexus.service").as_deref(), Some("leaf.v1"));

    // Async: call → attempt → handle → work → call(leaf) ...; the completion: handle → deliver
    // → completion (the callback request's traceparent).
    let call = one(
        &spans,
        "StartNexusOperation:middle.v1/relayAsync",
        Some(id(root)),
    );
    let attempt = one(&spans, "nexus.attempt", Some(id(call)));
    assert_eq!(attr(attempt, "nexus.outcome").as_deref(), Some("async"));
    let handle = one(
        &spans,
        "RunStartNexusOperationHandler:middle.v1/relayAsync",
        Some(id(attempt)),
    );
    assert_eq!(attr(handle, "nexus.answer").as_deref(), Some("async"));
    let work = one(&spans, "nexus.work", Some(id(handle)));
    assert_eq!(attr(work, "nexus.state").as_deref(), Some("succeeded"));
    let nested = children(&spans, "StartNexusOperation:leaf.v1/look", id(work));
    assert_eq!(nested.len(), 1);
    let deliver = one(&spans, "nexus.deliver", Some(id(handle)));
    assert_eq!(attr(deliver, "nexus.outcome").as_deref(), Some("delivered"));
    let completion = one(&spans, "nexus.completion", Some(id(deliver)));
    assert_eq!(
        attr(completion, "nexus.outcome").as_deref(),
        Some("accepted")
    );
    assert_eq!(attr(call, "nexus.state").as_deref(), Some("succeeded"));
    assert!(attr(call, "nexus.token").is_some());
    let middle_saw = parse(async_seen.middle.as_deref());
    assert_eq!(SpanId::from(middle_saw.parent_id_u64()), id(attempt));
    let _ = provider.shutdown();

    fn names(spans: &[SpanData]) -> Vec<(String, SpanId, SpanId)> {
        spans
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.span_context.span_id(),
                    s.parent_span_id,
                )
            })
            .collect()
    }
    fn children<'a>(spans: &'a [SpanData], name: &str, parent: SpanId) -> Vec<&'a SpanData> {
        spans
            .iter()
            .filter(|s| s.name == name && s.parent_span_id == parent)
            .collect()
    }
    fn one<'a>(spans: &'a [SpanData], name: &str, parent: Option<SpanId>) -> &'a SpanData {
        let found: Vec<_> = spans
            .iter()
            .filter(|s| s.name == name && parent.is_none_or(|p| s.parent_span_id == p))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{name}` under {parent:?}: {:#?}",
            names(spans)
        );
        found[0]
    }
    fn attr(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }
}
