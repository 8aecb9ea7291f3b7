//! Trace context across every hop, over real HTTP on loopback: a caller calls `middle.v1`, whose
//! operations call `leaf.v1` (a 3-level chain), and async completions come back by callback.
//!
//! Without an OpenTelemetry layer the trace id is carried as is; with the `otel` feature and an
//! in-memory exporter, the exported spans form one tree: caller → handler → nested call →
//! handler, and the completion's spans hang under the handler that started the operation.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use nexus_runtime::Client;
use nexus_runtime::transport::HttpTransport;
use support::trace_chain::{MiddleClient, Seen, TRACE, chain, parse};

/// Without OpenTelemetry, the caller's `traceparent` reaches the handler as sent, the nested call
/// continues the same trace from a new parent, and the completion request carries it too.
#[tokio::test]
async fn the_trace_id_travels_without_opentelemetry() {
    let (_leaf, middle) = chain().await;
    let mut callbacks = support::probe::recorder(vec![]).await;
    let client = Client::builder()
        .endpoint("middle", HttpTransport::new(middle.url()).unwrap())
        .callback_url(format!("{}/callback", callbacks.url))
        .build();
    let stub = MiddleClient::new(client, "middle");
    let sent = parse(Some(TRACE));

    let seen = stub
        .relay("x".into())
        .header("traceparent", TRACE)
        .await
        .unwrap();
    assert_eq!(seen.middle.as_deref(), Some(TRACE));
    let leaf = parse(seen.leaf.as_deref());
    assert_eq!(leaf.trace_id(), sent.trace_id());
    assert_ne!(leaf.parent_id(), sent.parent_id());

    // Async: the nested call is made from the background work, and the completion (received here
    // by a plain recorder) carries the trace.
    let handle = stub
        .relay_async("y".into())
        .header("traceparent", TRACE)
        .start()
        .await
        .unwrap();
    assert!(handle.token().is_some());
    let completion = callbacks.next().await;
    let carried = completion.headers["traceparent"].to_str().unwrap();
    assert_eq!(parse(Some(carried)).trace_id(), sent.trace_id());
    let body: Seen = serde_json::from_slice(&completion.body).unwrap();
    assert_eq!(parse(body.leaf.as_deref()).trace_id(), sent.trace_id());

    // No trace to continue: nothing is invented.
    let seen = stub.relay("z".into()).await.unwrap();
    assert_eq!((seen.middle, seen.leaf), (None, None));
}

/// A Temporal server forwards the caller's headers as they are (`X-Custom-Hdr` in the captures
/// of `protocol/temporal_captures.rs`): a `traceparent` arriving that way is continued by the
/// handler's nested calls.
#[tokio::test]
async fn a_traceparent_forwarded_by_temporal_is_continued() {
    let (_leaf, middle) = chain().await;
    let response = support::raw_client()
        .post(format!("{}/middle.v1/relay", middle.url()))
        .header("content-type", "application/json")
        .header("user-agent", "temporalio/server")
        .header("nexus-request-id", "6968d0d7-b6a6-44f0-8c7a-029115f8d221")
        .header("request-timeout", "9999ms")
        .header("temporal-nexus-failure-support", "true")
        .header("traceparent", TRACE)
        .body("\"x\"")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    assert_eq!(status, 200, "{body:?}");
    let seen: Seen = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen.middle.as_deref(), Some(TRACE));
    assert_eq!(
        parse(seen.leaf.as_deref()).trace_id(),
        parse(Some(TRACE)).trace_id()
    );
}
