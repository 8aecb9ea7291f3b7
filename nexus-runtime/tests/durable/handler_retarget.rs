//! A repeated start re-targets the completion: a caller that restarted (or a replica that took
//! over) retries the start with the same request id and a new callback URL, and the completion
//! goes there, whether the operation is still running or finished and its completion waits in
//! the outbox; once delivered, nothing changes. Over loopback HTTP, on the memory store, SQLite
//! and PostgreSQL (`NEXUS_TEST_POSTGRES_URL`), in real time with short intervals.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_runtime::HandlerError;
use nexus_runtime::completion::Callback;
use nexus_runtime::machinery::RetryPolicy;
use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::{Dispatcher, DurabilityOptions};
use nexus_runtime::store::AsyncState;
use nexus_runtime::transport::StartResponse;
use support::backend::Backend;
use support::eventually;
use support::jobs::{Job, JobsImpl, dispatcher, quick_options, quick_outbox, result_of, start};
use support::receiver::{Mode, Receiver};

const WITHIN: Duration = Duration::from_secs(20);

async fn handler(backend: &Backend, jobs: &JobsImpl, options: DurabilityOptions) -> Dispatcher {
    let d = dispatcher(jobs, backend.open().await, options);
    let _wiring = HandlerServer::new(d.clone());
    d
}

/// The callback of caller incarnation `incarnation` at `url`.
fn callback(url: &str, incarnation: &str) -> Callback {
    Callback::Url {
        url: url.to_owned(),
        headers: BTreeMap::from([("x-caller-incarnation".to_owned(), incarnation.to_owned())]),
    }
}

/// Starts (or starts again) `process` job `id` of `millis` as request `id`, with `callback`;
/// returns the token.
async fn start_job(d: &Dispatcher, id: &str, millis: u64, callback: Callback) -> String {
    let job = Job {
        id: id.to_owned(),
        millis,
    };
    let mut request = start("process", id, &job);
    request.callback = Some(callback);
    match d.start(request).await.unwrap() {
        StartResponse::Async { token, .. } => token,
        other => panic!("expected an async answer, got {other:?}"),
    }
}

/// The callback URL the store records for operation `token`.
async fn recorded_url(backend: &Backend, token: &str) -> String {
    let record = backend
        .open()
        .await
        .get_async(token)
        .await
        .unwrap()
        .unwrap();
    record.callback.unwrap().url
}

/// A URL nothing listens on (connections are refused): a caller that went away.
fn dead_url() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://{addr}/callback?caller=gone")
}

/// Still running when the start is repeated with callback B: the completion goes to B (with B's
/// headers), never to A, and the operation ran once.
async fn running_operation_completes_to_the_new_callback(backend: &Backend) {
    let jobs = JobsImpl::new();
    let d = handler(backend, &jobs, quick_options("h")).await;
    let b = Receiver::bind("127.0.0.1:0").await;
    let token = start_job(&d, "r1", 400, callback(&dead_url(), "first")).await;
    let again = start_job(&d, "r1", 400, callback(&b.url(), "second")).await;
    assert_eq!(again, token, "the same request id gets the same token");

    let completion = b.completion(&token, WITHIN).await;
    assert_eq!(result_of(&completion), "r1 done");
    assert_eq!(b.headers_of(&token)["x-caller-incarnation"], "second");
    assert_eq!(jobs.starts("process", "r1"), 1);
    assert_eq!(recorded_url(backend, &token).await, b.url());
    let store = backend.open().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.accepted().len(), 1, "delivered once");
    assert!(store.list_dead_deliveries(10).await.unwrap().is_empty());
    d.shutdown().await;
}

/// Finished, its completion backing off for an hour after A failed, when the start is repeated
/// with callback B: the delivery is redirected and due at once, so B gets it now.
async fn waiting_completion_is_redirected_and_due_now(backend: &Backend) {
    let hourly = RetryPolicy::default()
        .initial_interval(Duration::from_secs(3600))
        .maximum_interval(Duration::from_secs(3600))
        .jitter(0.0);
    let options = quick_options("h").outbox(quick_outbox().retry(hourly));
    let jobs = JobsImpl::new();
    let d = handler(backend, &jobs, options).await;
    let a = Receiver::bind("127.0.0.1:0").await;
    a.set_mode(Mode::Answer(HandlerError::unavailable("restarting")));
    let token = start_job(&d, "r2", 10, callback(&a.url(), "first")).await;
    let store = backend.open().await;
    eventually(WITHIN, "the operation completes", async || {
        store.get_async(&token).await.unwrap().unwrap().state == AsyncState::Succeeded
    })
    .await;
    eventually(WITHIN, "a delivery attempt to A fails", async || {
        a.requests() >= 1
    })
    .await;
    a.stop().await;

    let b = Receiver::bind("127.0.0.1:0").await;
    let again = start_job(&d, "r2", 10, callback(&b.url(), "second")).await;
    assert_eq!(again, token);
    let completion = b.completion(&token, WITHIN).await;
    assert_eq!(result_of(&completion), "r2 done");
    assert_eq!(b.headers_of(&token)["x-caller-incarnation"], "second");
    assert_eq!(jobs.starts("process", "r2"), 1);
    assert_eq!(recorded_url(backend, &token).await, b.url());
    d.shutdown().await;
}

/// Delivered to A before the start is repeated with callback B: nothing is sent again.
async fn delivered_completion_stays_delivered(backend: &Backend) {
    let d = handler(backend, &JobsImpl::new(), quick_options("h")).await;
    let a = Receiver::bind("127.0.0.1:0").await;
    let token = start_job(&d, "r3", 10, callback(&a.url(), "first")).await;
    a.completion(&token, WITHIN).await;
    // A's 200 is recorded by the outbox just after A received the request: wait until the
    // delivery is finished in the store (the only finished delivery, so purging removes it),
    // or the repeated start would race the outbox and redirect a delivery still in flight.
    let store = backend.open().await;
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    eventually(WITHIN, "A's acceptance is recorded", async || {
        store.purge_deliveries(later).await.unwrap() == 1
    })
    .await;

    let b = Receiver::bind("127.0.0.1:0").await;
    let again = start_job(&d, "r3", 10, callback(&b.url(), "second")).await;
    assert_eq!(again, token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.requests(), 0, "accepted by A is done");
    assert_eq!(a.accepted().len(), 1);
    assert_eq!(
        recorded_url(backend, &token).await,
        a.url(),
        "the record still says where it went"
    );
    d.shutdown().await;
}

support::backend::backend_matrix! {
    backends: memory, sqlite, postgres;
    cases: [
        running_operation_completes_to_the_new_callback,
        waiting_completion_is_redirected_and_due_now,
        delivered_completion_stays_delivered,
    ];
}
