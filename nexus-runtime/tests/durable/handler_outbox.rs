//! The completion outbox of a dispatcher with a store, delivering to a callback receiver over
//! loopback HTTP: a completion waits out a receiver that is down (across a dispatcher restart),
//! retryable answers are retried (one HTTP request per attempt), a non-retryable answer or an
//! expired completion is a dead delivery. On the memory store, SQLite and PostgreSQL
//! (`NEXUS_TEST_POSTGRES_URL`), in real time with short intervals.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::HandlerError;
use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::{Dispatcher, DurabilityOptions};
use nexus_runtime::store::{AsyncState, Delivery, DeliveryState, Store};
use nexus_runtime::transport::StartResponse;
use support::backend::Backend;
use support::eventually;
use support::jobs::{Job, JobsImpl, dispatcher, quick_options, result_of, start, url_callback};
use support::receiver::{Mode, Receiver};

const WITHIN: Duration = Duration::from_secs(20);

async fn handler(backend: &Backend, jobs: &JobsImpl, options: DurabilityOptions) -> Dispatcher {
    let d = dispatcher(jobs, backend.open().await, options);
    let _wiring = HandlerServer::new(d.clone());
    d
}

/// Starts a quick `process` job whose completion goes to `url`; returns its token.
async fn quick_job(d: &Dispatcher, url: &str, id: &str) -> String {
    let mut request = start(
        "process",
        id,
        &Job {
            id: id.to_owned(),
            millis: 10,
        },
    );
    request.callback = Some(url_callback(url));
    match d.start(request).await.unwrap() {
        StartResponse::Async { token, .. } => token,
        other => panic!("expected an async answer, got {other:?}"),
    }
}

/// The dead delivery of `token`, once there is one.
async fn dead_delivery(store: &Arc<dyn Store>, token: &str) -> Delivery {
    let mut found = None;
    eventually(WITHIN, "the delivery is given up", async || {
        found = store
            .list_dead_deliveries(100)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.completion.token == token);
        found.is_some()
    })
    .await;
    found.unwrap()
}

/// The receiver is down when the operation completes; the dispatcher stops; the next one on the
/// store delivers the completion once the receiver is back.
async fn waits_for_the_receiver_across_a_restart(backend: &Backend) {
    // A free port, then nothing listening on it: connections are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/callback?caller=test");
    let first = handler(backend, &JobsImpl::new(), quick_options("h")).await;
    let token = quick_job(&first, &url, "o1").await;
    let store = backend.open().await;
    eventually(WITHIN, "the operation completes", async || {
        store.get_async(&token).await.unwrap().unwrap().state == AsyncState::Succeeded
    })
    .await;
    // Some attempts fail meanwhile (connection refused).
    tokio::time::sleep(Duration::from_millis(150)).await;
    first.shutdown().await;

    let second = handler(backend, &JobsImpl::new(), quick_options("h")).await;
    let receiver = Receiver::bind(&addr.to_string()).await;
    let completion = receiver.completion(&token, WITHIN).await;
    assert_eq!(result_of(&completion), "o1 done");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.accepted().len(), 1, "delivered once");
    assert!(store.list_dead_deliveries(10).await.unwrap().is_empty());
    second.shutdown().await;
}

/// Retryable answers (503) are retried, one HTTP request per attempt, until one is accepted.
async fn retries_until_accepted(backend: &Backend) {
    let receiver = Receiver::bind("127.0.0.1:0").await;
    receiver.set_mode(Mode::Answer(HandlerError::unavailable("busy")));
    let d = handler(backend, &JobsImpl::new(), quick_options("h")).await;
    let token = quick_job(&d, &receiver.url(), "o2").await;
    eventually(WITHIN, "three refused attempts", async || {
        receiver.requests() >= 3
    })
    .await;
    receiver.set_mode(Mode::Accept);
    let completion = receiver.completion(&token, WITHIN).await;
    assert_eq!(result_of(&completion), "o2 done");
    let requests = receiver.requests();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.requests(), requests, "no attempt after acceptance");
    d.shutdown().await;
}

/// A non-retryable answer (400) gives the delivery up after one attempt, keeping the reason.
async fn non_retryable_answers_are_dead(backend: &Backend) {
    let receiver = Receiver::bind("127.0.0.1:0").await;
    receiver.set_mode(Mode::Answer(HandlerError::bad_request("unknown operation")));
    let d = handler(backend, &JobsImpl::new(), quick_options("h")).await;
    let token = quick_job(&d, &receiver.url(), "o3").await;
    let store = backend.open().await;
    let dead = dead_delivery(&store, &token).await;
    assert_eq!(dead.state, DeliveryState::Dead);
    assert_eq!(dead.attempts, 1);
    assert_eq!(receiver.requests(), 1);
    let error = dead.last_error.clone().unwrap();
    assert!(error.contains("failed for good, not retried"), "{error}");
    assert!(error.contains("unknown operation"), "{error}");
    assert_eq!(dead.url, receiver.url());
    assert_eq!(dead.headers["x-caller-operation"], "op-1");
    d.shutdown().await;
}

/// A completion still undelivered at its maximum age is given up, saying so.
async fn expired_deliveries_are_dead(backend: &Backend) {
    let receiver = Receiver::bind("127.0.0.1:0").await;
    receiver.set_mode(Mode::Answer(HandlerError::unavailable("still busy")));
    let options = quick_options("h")
        .outbox(support::jobs::quick_outbox().max_age(Duration::from_millis(400)));
    let d = handler(backend, &JobsImpl::new(), options).await;
    let token = quick_job(&d, &receiver.url(), "o4").await;
    let store = backend.open().await;
    let dead = dead_delivery(&store, &token).await;
    let error = dead.last_error.clone().unwrap();
    assert!(error.contains("expired"), "{error}");
    assert!(error.contains("still busy"), "{error}");
    assert!(dead.attempts >= 2, "{dead:?}");
    assert!(receiver.requests() >= 2);
    d.shutdown().await;
}

/// With a bound on attempts, the delivery is given up after that many, each one HTTP request
/// (the outbox does the retrying, not the sender).
async fn attempts_are_bounded(backend: &Backend) {
    let receiver = Receiver::bind("127.0.0.1:0").await;
    receiver.set_mode(Mode::Answer(HandlerError::internal("broken")));
    let outbox = support::jobs::quick_outbox();
    let retry = nexus_runtime::machinery::RetryPolicy::default()
        .initial_interval(Duration::from_millis(30))
        .jitter(0.0)
        .maximum_attempts(3);
    let options = quick_options("h").outbox(outbox.retry(retry));
    let d = handler(backend, &JobsImpl::new(), options).await;
    let token = quick_job(&d, &receiver.url(), "o5").await;
    let store = backend.open().await;
    let dead = dead_delivery(&store, &token).await;
    let error = dead.last_error.clone().unwrap();
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    assert!(error.contains("broken"), "{error}");
    assert_eq!(dead.attempts, 3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.requests(), 3);
    d.shutdown().await;
}

support::backend::backend_matrix! {
    backends: memory, sqlite, postgres;
    cases: [
        waits_for_the_receiver_across_a_restart,
        retries_until_accepted,
        non_retryable_answers_are_dead,
        expired_deliveries_are_dead,
        attempts_are_bounded,
    ];
}

/// Receivers that accept connections and never answer hold back only their own deliveries: a
/// completion for a healthy receiver, enqueued while 96 attempts wait on dead ones (more than a
/// claim's batch of 32), arrives at once rather than after the dead attempts' timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_delays_only_its_own_deliveries() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let accepted = Arc::new(AtomicUsize::new(0));
    let mut dead_urls = Vec::new();
    for _ in 0..4 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        dead_urls.push(format!(
            "http://{}/callback?caller=dead",
            listener.local_addr().unwrap()
        ));
        let accepted = accepted.clone();
        tokio::spawn(async move {
            // Accepts, reads nothing, answers nothing: each attempt waits for its timeout.
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
    }
    let healthy = Receiver::bind("127.0.0.1:0").await;
    // Attempts bounded by half the visibility (20 s), and by the sender's 10 s timeout.
    let options = quick_options("h")
        .outbox(support::jobs::quick_outbox().visibility(Duration::from_secs(40)));
    let d = handler(&Backend::memory(), &JobsImpl::new(), options).await;
    for i in 0..96 {
        quick_job(&d, &dead_urls[i % dead_urls.len()], &format!("dead-{i}")).await;
    }
    eventually(WITHIN, "attempts wait on the dead receivers", async || {
        accepted.load(Ordering::SeqCst) >= 32
    })
    .await;
    let begun = std::time::Instant::now();
    let token = quick_job(&d, &healthy.url(), "healthy").await;
    let completion = healthy.completion(&token, WITHIN).await;
    assert_eq!(result_of(&completion), "healthy done");
    let waited = begun.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the healthy completion waited {waited:?} behind dead receivers"
    );
    d.shutdown().await;
}
