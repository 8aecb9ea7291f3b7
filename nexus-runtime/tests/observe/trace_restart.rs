//! The trace context of an async operation is stored with its callback: the completion the outbox
//! sends after the handler restarted (resumed by the next dispatcher on the store) still carries
//! the trace the start request came with.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use nexus_runtime::observe::TraceContext;
use nexus_runtime::server::HandlerServer;
use nexus_runtime::transport::StartResponse;
use support::backend::Backend;
use support::jobs::{Job, JobsImpl, dispatcher, quick_options, result_of, start, url_callback};
use support::receiver::Receiver;

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_sent_after_a_restart_carries_the_trace() {
    let backend = Backend::memory();
    let receiver = Receiver::bind("127.0.0.1:0").await;
    let before = JobsImpl::new();
    let first = dispatcher(&before, backend.open().await, quick_options("handler-1"));
    let _wiring = HandlerServer::new(first.clone());
    let job = Job {
        id: "p-1".into(),
        millis: 3_600_000,
    };
    let mut request = start("process", "p-1", &job);
    request.callback = Some(url_callback(&receiver.url()));
    request.headers.insert("traceparent".into(), TRACE.into());
    let token = match first.start(request).await.unwrap() {
        StartResponse::Async { token, .. } => token,
        other => panic!("expected an async answer, got {other:?}"),
    };
    first.shutdown().await;

    let after = JobsImpl::new();
    let second = dispatcher(&after, backend.open().await, quick_options("handler-1"));
    let _wiring = HandlerServer::new(second.clone());
    let done = receiver.completion(&token, Duration::from_secs(20)).await;
    assert_eq!(result_of(&done), "p-1 done (resumed)");
    let headers = receiver.headers_of(&token);
    let sent = TraceContext::parse(headers["traceparent"].to_str().unwrap(), None).unwrap();
    let received = TraceContext::parse(TRACE, None).unwrap();
    assert_eq!(sent.trace_id(), received.trace_id());
    second.shutdown().await;
}
