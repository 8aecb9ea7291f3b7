//! Deduplication of starts by request id, and cancel requests, in a dispatcher with a store: on
//! the memory store (paused time), SQLite (real time) and PostgreSQL (when
//! `NEXUS_TEST_POSTGRES_URL` is set).
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use nexus_runtime::codec;
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::{AsyncState, Store};
use nexus_runtime::transport::{CancelRequest, StartResponse};
use nexus_runtime::{OperationError, StartError};
use support::backend::Backend;
use support::jobs::{Flaky, Job, JobsImpl, Sink, dispatcher, quick_options, start};

fn sync_value(response: StartResponse) -> u64 {
    match response {
        StartResponse::Sync { output, .. } => codec::decode(&output).unwrap(),
        other => panic!("expected a sync answer, got {other:?}"),
    }
}

fn token_of(response: StartResponse) -> String {
    match response {
        StartResponse::Async { token, .. } => token,
        other => panic!("expected an async answer, got {other:?}"),
    }
}

fn handler_error(result: Result<StartResponse, StartError>) -> nexus_runtime::HandlerError {
    match result {
        Err(StartError::Handler(e)) => e,
        other => panic!("expected a HandlerError, got {other:?}"),
    }
}

fn cancel(token: &str, operation: &str) -> CancelRequest {
    CancelRequest {
        service: "jobs.v1".into(),
        operation: operation.into(),
        token: token.into(),
        headers: Default::default(),
        request_deadline: None,
    }
}

async fn setup(backend: &Backend) -> (JobsImpl, Dispatcher, std::sync::Arc<dyn Store>) {
    let jobs = JobsImpl::new();
    let store = backend.open().await;
    let d = dispatcher(&jobs, store.clone(), quick_options("dedup"));
    (jobs, d, store)
}

/// The same request id gets the same sync result, without running the handler again, also from a
/// restarted dispatcher; another request id runs it.
async fn sync_results_are_replayed(backend: &Backend) {
    let (jobs, d, store) = setup(backend).await;
    for _ in 0..3 {
        assert_eq!(
            sync_value(d.start(start("double", "r1", &21)).await.unwrap()),
            42
        );
    }
    assert_eq!(jobs.starts("double", "r1"), 1);
    d.shutdown().await;

    let restarted = dispatcher(&jobs, store, quick_options("dedup"));
    // Even with another input: the request id names the request.
    assert_eq!(
        sync_value(restarted.start(start("double", "r1", &5)).await.unwrap()),
        42
    );
    assert_eq!(jobs.starts("double", "r1"), 1);
    assert_eq!(
        sync_value(restarted.start(start("double", "r2", &5)).await.unwrap()),
        10
    );
    assert_eq!(jobs.starts("double", "r2"), 1);
    restarted.shutdown().await;
}

/// The same request id gets the same token; the work runs once and completes once.
async fn async_tokens_are_replayed(backend: &Backend) {
    let (jobs, d, store) = setup(backend).await;
    let (sink, mut completions) = Sink::new();
    let job = Job {
        id: "j1".into(),
        millis: 50,
    };
    let mut request = start("process", "a1", &job);
    request.callback = Some(sink.callback());
    let token = token_of(d.start(request.clone()).await.unwrap());
    assert_eq!(token_of(d.start(request.clone()).await.unwrap()), token);
    let completion = completions.recv().await.unwrap();
    assert_eq!(completion.token, token);
    assert_eq!(support::jobs::result_of(&completion), "j1 done");
    // After completion, a late retry still gets the token, and nothing runs again.
    assert_eq!(token_of(d.start(request).await.unwrap()), token);
    assert_eq!(jobs.starts("process", "a1"), 1);
    assert_eq!(jobs.work_runs.lock().unwrap().len(), 1);
    let record = store.get_async(&token).await.unwrap().unwrap();
    assert_eq!(record.state, AsyncState::Succeeded);
    assert_eq!(record.request_id, "a1");
    assert!(record.resumable);
    assert!(
        record.callback.is_none(),
        "an in-process callback is not stored"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        completions.try_recv().is_err(),
        "a second completion was sent"
    );
    d.shutdown().await;
}

/// An OperationError and a non-retryable HandlerError are recorded and replayed.
async fn final_errors_are_replayed(backend: &Backend) {
    let (jobs, d, _store) = setup(backend).await;
    for _ in 0..2 {
        match d.start(start("refuse", "e1", &"operation")).await {
            Err(StartError::Operation(e)) => {
                assert_eq!(e.message, "refused on purpose");
                assert_eq!(
                    e.details::<serde_json::Value>().unwrap(),
                    Some(serde_json::json!({ "why": "policy" }))
                );
            }
            other => panic!("expected an OperationError, got {other:?}"),
        }
        let e = handler_error(d.start(start("refuse", "e2", &"thing")).await);
        assert_eq!(e.error_type, HandlerErrorType::BadRequest);
        assert_eq!(e.message, "cannot take `thing`");
        assert!(!e.is_retryable());
    }
    assert_eq!(jobs.starts("refuse", "e1"), 1);
    assert_eq!(jobs.starts("refuse", "e2"), 1);
    d.shutdown().await;
}

/// A retryable error, a panic or a missed request deadline is not an answer: the retry runs the
/// handler again, and its answer is the one recorded.
async fn retryable_failures_run_again(backend: &Backend) {
    let (jobs, d, _store) = setup(backend).await;
    for how in ["unavailable", "panic", "stall"] {
        let id = format!("f-{how}");
        let input = Flaky {
            fail_first: 1,
            how: how.into(),
        };
        let request = || {
            let mut r = start("flaky", &id, &input);
            r.request_deadline = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            r
        };
        let e = handler_error(d.start(request()).await);
        let expected = match how {
            "unavailable" => HandlerErrorType::Unavailable,
            "panic" => HandlerErrorType::Internal,
            _ => HandlerErrorType::UpstreamTimeout,
        };
        assert_eq!(e.error_type, expected, "{how}: {e}");
        assert!(e.is_retryable());
        assert_eq!(sync_value(d.start(request()).await.unwrap()), 2, "{how}");
        assert_eq!(sync_value(d.start(request()).await.unwrap()), 2, "{how}");
        assert_eq!(jobs.starts("flaky", &id), 2, "{how}");
    }
    d.shutdown().await;
}

/// A retry while the first request still runs its handler is UNAVAILABLE, and does not run it.
async fn in_flight_duplicates_are_unavailable(backend: &Backend) {
    let (jobs, d, _store) = setup(backend).await;
    let first = tokio::spawn({
        let d = d.clone();
        async move { d.start(start("hold", "h1", &7)).await }
    });
    support::eventually(
        Duration::from_secs(10),
        "the first start runs",
        async || jobs.starts("hold", "h1") == 1,
    )
    .await;
    let second = tokio::time::timeout(Duration::from_secs(5), d.start(start("hold", "h1", &7)));
    let e = handler_error(second.await.expect("the retry waited for the first start"));
    assert_eq!(e.error_type, HandlerErrorType::Unavailable);
    assert!(e.message.contains("in progress"), "{e}");
    assert!(e.message.contains("h1"), "{e}");
    jobs.release();
    assert_eq!(sync_value(first.await.unwrap().unwrap()), 7);
    assert_eq!(
        sync_value(d.start(start("hold", "h1", &7)).await.unwrap()),
        7
    );
    assert_eq!(jobs.starts("hold", "h1"), 1);
    d.shutdown().await;
}

/// A request that goes away while its handler runs gives its request id up: the retry runs.
async fn dropped_requests_give_their_claim_up(backend: &Backend) {
    let (jobs, d, _store) = setup(backend).await;
    let first = tokio::spawn({
        let d = d.clone();
        async move { d.start(start("hold", "d1", &3)).await }
    });
    support::eventually(
        Duration::from_secs(10),
        "the first start runs",
        async || jobs.starts("hold", "d1") == 1,
    )
    .await;
    first.abort();
    let _ = first.await;
    jobs.release();
    let mut answer = None;
    support::eventually(
        Duration::from_secs(10),
        "the claim is abandoned",
        async || match d.start(start("hold", "d1", &3)).await {
            Ok(response) => {
                answer = Some(sync_value(response));
                true
            }
            Err(_) => false,
        },
    )
    .await;
    assert_eq!(answer, Some(3));
    assert_eq!(jobs.starts("hold", "d1"), 2);
    d.shutdown().await;
}

/// Starts without a request id are not deduplicated, but their async operations are recorded.
async fn empty_request_ids_are_not_deduplicated(backend: &Backend) {
    let (jobs, d, store) = setup(backend).await;
    assert_eq!(
        sync_value(d.start(start("double", "", &1)).await.unwrap()),
        2
    );
    assert_eq!(
        sync_value(d.start(start("double", "", &1)).await.unwrap()),
        2
    );
    assert_eq!(jobs.starts("double", ""), 2);
    let job = Job {
        id: "n".into(),
        millis: 3_600_000,
    };
    let a = token_of(d.start(start("process", "", &job)).await.unwrap());
    let b = token_of(d.start(start("process", "", &job)).await.unwrap());
    assert_ne!(a, b);
    let record = store.get_async(&a).await.unwrap().unwrap();
    assert_eq!(record.state, AsyncState::Running);
    assert_eq!(record.request_id, "");
    d.shutdown().await;
}

/// A cancel request is recorded, then signalled; cancel requests for operations this dispatcher
/// is not running are answered from the store.
async fn cancel_requests_are_recorded(backend: &Backend) {
    let (jobs, d, store) = setup(backend).await;
    let (sink, mut completions) = Sink::new();
    let mut request = start(
        "process",
        "c1",
        &Job {
            id: "c1".into(),
            millis: 3_600_000,
        },
    );
    request.callback = Some(sink.callback());
    let token = token_of(d.start(request).await.unwrap());
    d.cancel(cancel(&token, "process")).await.unwrap();
    let record = store.get_async(&token).await.unwrap().unwrap();
    assert!(record.cancel_requested_at.is_some());
    let completion = completions.recv().await.unwrap();
    let error: OperationError = completion.outcome.unwrap_err();
    assert!(error.is_canceled(), "{error:?}");
    assert_eq!(error.message, "c1 canceled");
    assert_eq!(
        store.get_async(&token).await.unwrap().unwrap().state,
        AsyncState::Canceled
    );
    // Finished: nothing left to cancel, accepted.
    d.cancel(cancel(&token, "process")).await.unwrap();
    // Unknown, or another operation's token: NOT_FOUND.
    let e = d
        .cancel(cancel("no-such-token", "process"))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, HandlerErrorType::NotFound);
    let e = d.cancel(cancel(&token, "transfer")).await.unwrap_err();
    assert_eq!(e.error_type, HandlerErrorType::NotFound);
    assert!(e.message.contains("jobs.v1/process"), "{e}");
    assert_eq!(jobs.starts("process", "c1"), 1);
    d.shutdown().await;
}

/// A cancel request that reaches another replica is recorded there, and the replica running the
/// operation signals it at its next lease renewal.
async fn cancel_requests_reach_the_replica_running_the_operation(backend: &Backend) {
    let jobs = JobsImpl::new();
    let a = dispatcher(&jobs, backend.open().await, quick_options("replica-a"));
    let b = dispatcher(&jobs, backend.open().await, quick_options("replica-b"));
    let (sink, mut completions) = Sink::new();
    let mut request = start(
        "process",
        "x1",
        &Job {
            id: "x1".into(),
            millis: 3_600_000,
        },
    );
    request.callback = Some(sink.callback());
    let token = token_of(a.start(request).await.unwrap());
    b.cancel(cancel(&token, "process")).await.unwrap();
    let completion = tokio::time::timeout(Duration::from_secs(10), completions.recv())
        .await
        .expect("the cancel request never reached the operation")
        .unwrap();
    let error = completion.outcome.unwrap_err();
    assert!(error.is_canceled(), "{error:?}");
    assert_eq!(error.message, "x1 canceled");
    assert_eq!(b.running_operations(), 0, "replica b never ran it");
    a.shutdown().await;
    b.shutdown().await;
}

support::backend::backend_matrix! {
    backends: memory #[tokio::test(start_paused = true)], sqlite, postgres;
    cases: [
        sync_results_are_replayed,
        async_tokens_are_replayed,
        final_errors_are_replayed,
        retryable_failures_run_again,
        in_flight_duplicates_are_unavailable,
        dropped_requests_give_their_claim_up,
        empty_request_ids_are_not_deduplicated,
        cancel_requests_are_recorded,
        cancel_requests_reach_the_replica_running_the_operation,
    ];
}

/// Answers are kept for the retention period, then purged (at start-up and every hour): a retry
/// after that runs the handler again. A running operation is kept however old it is.
#[tokio::test(start_paused = true)]
async fn answers_are_purged_after_the_retention_period() {
    let backend = Backend::memory();
    let jobs = JobsImpl::new();
    let store = backend.open().await;
    let options = nexus_runtime::service::DurabilityOptions::default()
        .retention(Some(Duration::from_secs(1800)));
    let d = dispatcher(&jobs, store.clone(), options);
    assert_eq!(
        sync_value(d.start(start("double", "old", &1)).await.unwrap()),
        2
    );
    let long = Job {
        id: "long".into(),
        millis: 10 * 3_600_000,
    };
    let token = token_of(d.start(start("process", "long", &long)).await.unwrap());
    tokio::time::sleep(Duration::from_secs(1200)).await;
    assert_eq!(
        sync_value(d.start(start("double", "old", &1)).await.unwrap()),
        2
    );
    assert_eq!(jobs.starts("double", "old"), 1, "kept within the retention");
    // The hourly purge after the answer is 30 minutes old.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        sync_value(d.start(start("double", "old", &1)).await.unwrap()),
        2
    );
    assert_eq!(
        jobs.starts("double", "old"),
        2,
        "purged after the retention"
    );
    let record = store.get_async(&token).await.unwrap().unwrap();
    assert_eq!(record.state, AsyncState::Running);
    d.shutdown().await;
}
