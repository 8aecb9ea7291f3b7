//! Caller restarts: a client is stopped in every state of an operation (an attempt in flight,
//! backing off, started, cancel requested, finished) and a new client on the same store carries
//! on: the same request id on the retried attempt, the backoff and timeouts counted from what was
//! recorded, completions delivered, `attach` by operation id, typed errors as they were.
//!
//! Each scenario runs twice: on a memory store shared by the two clients under paused time
//! (deterministic), and on an SQLite file reopened by the second client, in real time with short
//! intervals (what a process restart sees).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::client::{EndpointConfig, OperationState};
use nexus_runtime::codec;
use nexus_runtime::completion::Completion;
use nexus_runtime::error::{HandlerErrorType, OperationErrorState, TimeoutKind};
use nexus_runtime::machinery::{Jitter, RetryPolicy};
use nexus_runtime::store::{self, CallerStore, OperationId};
use nexus_runtime::{CallError, CancellationType, Client, HandlerError, OperationError};
use support::backend::Backend;
use support::scripted::{Answer, EchoClient, EchoOp, Scripted, deliver};
use tokio::time::Instant;

/// Opens the store a client uses: the same records every time.
type Open =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn CallerStore>> + Send>> + Send + Sync>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A client with a store, calling `transport` as endpoint `echo`; retries every 500 ms exactly.
fn client(store: Arc<dyn CallerStore>, transport: &Scripted) -> Client {
    Client::builder()
        .endpoint(
            "echo",
            EndpointConfig::new(transport.clone()).retry(
                RetryPolicy::default()
                    .initial_interval(ms(500))
                    .backoff_coefficient(1.0)
                    .jitter(0.0),
            ),
        )
        .store(store)
        .jitter(Jitter::seeded(7))
        .build()
}

fn completion(token: &str, outcome: Result<&str, OperationError>) -> Completion {
    Completion {
        token: token.to_owned(),
        outcome: outcome.map(|s| codec::encode(&s.to_owned()).unwrap()),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    }
}

/// Waits (polling) until `condition` holds, for at most 10 s.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        tokio::time::sleep(ms(5)).await;
    }
}

async fn stored(store: &Arc<dyn CallerStore>, id: OperationId) -> store::CallerRecord {
    store
        .get(id)
        .await
        .unwrap()
        .expect("the operation is recorded")
}

/// An attempt is in flight when the first process stops: the second sends it again with the same
/// request id, and the operation is recorded before the first attempt.
async fn attempt_in_flight(backend: &Backend) {
    let open = callers(backend);
    let first = Scripted::new("first");
    first.starts([Answer::Hang]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let handle = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .request_id("req-1")
        .schedule()
        .unwrap();
    let id = handle.operation_id();
    until("the first attempt is sent", || first.start_count() == 1).await;
    let record = stored(&store, id).await;
    assert_eq!(record.state, store::OperationState::Scheduled);
    assert_eq!(record.attempt, 1);
    assert_eq!(record.request_id, "req-1");
    assert_eq!(record.endpoint, "echo");
    assert_eq!(record.service, "echo.v1");
    assert_eq!(record.operation, "echo");
    assert_eq!(codec::decode::<String>(&record.input).unwrap(), "hello");
    assert_eq!(record.options["version"], 1);
    a.shutdown().await;

    let second = Scripted::new("second");
    let b = client(open().await, &second);
    assert_eq!(b.recover().await.unwrap(), 1);
    let handle = b.attach::<EchoOp>(id).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "hello");
    assert_eq!(handle.operation_id(), id);
    assert_eq!(handle.request_id(), "req-1");
    let starts = second.seen_starts();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].request_id, "req-1");
    let record = stored(&store, id).await;
    assert_eq!(record.state, store::OperationState::Succeeded);
    assert_eq!(record.attempt, 2);
    assert!(record.closed_at.is_some() && record.lease.is_none());
}

/// Backing off when the first process stops: the attempt count, the next attempt's time and the
/// last failure are recorded, and the second process waits until that time.
async fn backing_off(backend: &Backend) {
    let open = callers(backend);
    let first = Scripted::new("first");
    first.starts([Answer::unavailable()]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let handle = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .request_id("req-2")
        .schedule()
        .unwrap();
    let id = handle.operation_id();
    handle
        .wait_for(|i| i.state == OperationState::BackingOff)
        .await;
    let record = stored(&store, id).await;
    assert_eq!(record.state, store::OperationState::BackingOff);
    assert_eq!(record.attempt, 1);
    let failure = record.last_failure.as_ref().expect("the last failure");
    assert_eq!(
        CallError::from_failure(failure),
        CallError::Handler(HandlerError::unavailable("try later"))
    );
    let next = nexus_runtime::clock::instant_at(record.next_attempt_at.expect("next attempt"));
    a.shutdown().await;

    let second = Scripted::new("second");
    let b = client(open().await, &second);
    b.recover().await.unwrap();
    let handle = b.attach::<EchoOp>(id).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "hello");
    let starts = second.seen_starts();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].request_id, "req-2");
    assert!(
        starts[0].at + ms(2) >= next,
        "the resumed attempt went {:?} before the recorded time",
        next - starts[0].at
    );
    assert_eq!(stored(&store, id).await.attempt, 2);
}

/// Started when the first process stops: the second sends no start, waits for the completion
/// (delivered to it as its receiver would); the same completion again is acknowledged, another
/// outcome refused.
async fn started(backend: &Backend) {
    let open = callers(backend);
    let first = Scripted::new("first");
    first.starts([Answer::Async("tok-3".into())]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let handle = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .request_id("req-3")
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    let record = stored(&store, id).await;
    assert_eq!(record.state, store::OperationState::Started);
    assert_eq!(record.token.as_deref(), Some("tok-3"));
    assert_eq!(record.target.as_deref(), Some("0"));
    a.shutdown().await;

    let second = Scripted::new("second");
    let b = client(open().await, &second);
    assert_eq!(b.recover().await.unwrap(), 1);
    let handle = b.attach::<EchoOp>(id).await.unwrap();
    assert_eq!(handle.state(), OperationState::Started);
    assert_eq!(handle.token(), Some("tok-3"));
    // Another call with the same request id follows the recorded operation: no second start.
    let same = EchoClient::new(b.clone(), "echo")
        .echo("other input".into())
        .request_id("req-3")
        .schedule()
        .unwrap();
    deliver(&b, id, completion("tok-3", Ok("done")))
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "done");
    assert_eq!(same.result().await.unwrap(), "done");
    assert_eq!(same.operation_id(), id);
    assert_eq!(second.start_count(), 0);
    // The same completion again (its sender missed the first 200) is acknowledged; another
    // outcome is refused; neither changes the record.
    deliver(&b, id, completion("tok-3", Ok("done")))
        .await
        .unwrap();
    let other = deliver(&b, id, completion("tok-3", Ok("other")))
        .await
        .unwrap_err();
    assert_eq!(other.error_type, HandlerErrorType::NotFound);
    assert_eq!(
        stored(&store, id).await.result.map(|r| r.data),
        Some(codec::encode(&"done".to_owned()).unwrap().data)
    );
    assert_eq!(
        stored(&store, id).await.state,
        store::OperationState::Succeeded
    );
}

/// The timeouts of a resumed operation count from the recorded deadlines, not from the restart.
async fn timeouts_keep_running(backend: &Backend) {
    let open = callers(backend);
    let first = Scripted::new("first");
    first.starts([Answer::Async("tok-4".into())]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let begun = Instant::now();
    let handle = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .start_to_close_timeout(ms(1500))
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    tokio::time::sleep(ms(600)).await;
    a.shutdown().await;

    let b = client(open().await, &Scripted::new("second"));
    b.recover().await.unwrap();
    let handle = b.attach::<EchoOp>(id).await.unwrap();
    let error = handle.result().await.unwrap_err();
    let elapsed = begun.elapsed();
    assert!(
        matches!(
            error,
            CallError::Timeout {
                kind: TimeoutKind::StartToClose,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        elapsed >= ms(1490) && elapsed < ms(2000),
        "timed out after {elapsed:?}, not 1.5 s after the start"
    );
    assert_eq!(
        stored(&store, id).await.state,
        store::OperationState::TimedOut
    );
}

/// Errors read back after a restart are the errors the first process saw, typed.
async fn typed_errors_survive(backend: &Backend) {
    let open = callers(backend);
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Declined {
        code: u32,
    }
    let first = Scripted::new("first");
    first.starts([
        Answer::Async("tok-5".into()),
        Answer::Fail(CallError::Handler(HandlerError::bad_request("no amount"))),
    ]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let echo = EchoClient::new(a.clone(), "echo");
    let failed = echo.echo("a".into()).start().await.unwrap();
    deliver(
        &a,
        failed.operation_id(),
        completion(
            "tok-5",
            Err(OperationError::failed("declined").with_details(&Declined { code: 51 })),
        ),
    )
    .await
    .unwrap();
    let failed_error = failed.result().await.unwrap_err();
    let rejected = echo.echo("b".into()).schedule().unwrap();
    let rejected_error = rejected.result().await.unwrap_err();
    first.starts([Answer::unavailable(), Answer::unavailable()]);
    let timed_out = echo
        .echo("c".into())
        .schedule_to_close_timeout(ms(800))
        .schedule()
        .unwrap();
    let timeout_error = timed_out.result().await.unwrap_err();
    assert!(matches!(
        &timeout_error,
        CallError::Timeout { kind: TimeoutKind::ScheduleToClose, last_failure: Some(last) }
            if matches!(**last, CallError::Handler(_))
    ));
    let canceled = echo
        .echo("d".into())
        .cancellation_type(CancellationType::Abandon)
        .schedule()
        .unwrap();
    first.starts([Answer::Hang]);
    let _ = canceled.cancel().await;
    let canceled_error = canceled.result().await.unwrap_err();
    let ids = [
        failed.operation_id(),
        rejected.operation_id(),
        timed_out.operation_id(),
        canceled.operation_id(),
    ];
    a.shutdown().await;

    let b = client(open().await, &Scripted::new("second"));
    assert_eq!(
        b.recover().await.unwrap(),
        0,
        "every operation had finished"
    );
    let mut errors = Vec::new();
    for id in ids {
        errors.push(
            b.attach::<EchoOp>(id)
                .await
                .unwrap()
                .result()
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(
        errors,
        [failed_error, rejected_error, timeout_error, canceled_error]
    );
    let CallError::Operation(e) = &errors[0] else {
        panic!("{:?}", errors[0])
    };
    assert_eq!(e.state, OperationErrorState::Failed);
    assert_eq!(
        e.details::<Declined>().unwrap(),
        Some(Declined { code: 51 })
    );
    assert_eq!(
        errors[1].as_handler_error().map(|e| e.error_type.clone()),
        Some(HandlerErrorType::BadRequest)
    );
    assert_eq!(errors[3], CallError::Canceled);
}

/// A cancellation requested before the restart is carried out by the next process.
async fn cancel_requested(backend: &Backend) {
    let open = callers(backend);
    let first = Scripted::new("first");
    first
        .starts([Answer::Async("tok-6".into())])
        .cancels([Answer::Hang]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let handle = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .cancellation_type(CancellationType::WaitCompleted)
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    let canceling = tokio::spawn({
        let handle = handle.clone();
        async move { handle.cancel().await }
    });
    until("the cancel request is sent", || {
        first.seen_cancels().len() == 1
    })
    .await;
    assert!(stored(&store, id).await.cancel_requested_at.is_some());
    a.shutdown().await;
    let _ = canceling.await;

    let second = Scripted::new("second");
    let b = client(open().await, &second);
    b.recover().await.unwrap();
    until("the cancel request is sent again", || {
        second.seen_cancels().len() == 1
    })
    .await;
    assert_eq!(second.seen_cancels()[0].1, "tok-6");
    deliver(
        &b,
        id,
        completion("tok-6", Err(OperationError::canceled("stopped"))),
    )
    .await
    .unwrap();
    let error = b
        .attach::<EchoOp>(id)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CallError::Operation(e) if e.state == OperationErrorState::Canceled),
        "{error:?}"
    );
}

/// With a store, an operation outlives its handles; a finished one is found again by its request
/// id and by its id, by a later process too, without being started again.
async fn outlives_handles_and_dedups(backend: &Backend) {
    let open = callers(backend);
    let first = Scripted::new("first");
    first.starts([Answer::Async("tok-7".into())]);
    let store = open().await;
    let a = client(store.clone(), &first);
    let handle = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .request_id("req-7")
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    drop(handle);
    tokio::time::sleep(ms(50)).await;
    assert_eq!(a.pending_operations(), 1, "not abandoned");
    deliver(&a, id, completion("tok-7", Ok("done")))
        .await
        .unwrap();
    until("the operation ends", || a.pending_operations() == 0).await;
    a.shutdown().await;

    let third = Scripted::new("third");
    let c = client(open().await, &third);
    let again = EchoClient::new(c.clone(), "echo")
        .echo("hello".into())
        .request_id("req-7")
        .start()
        .await
        .unwrap();
    assert_eq!(again.operation_id(), id);
    assert_eq!(again.result().await.unwrap(), "done");
    assert_eq!(third.start_count(), 0);
    let attached = c.attach::<EchoOp>(id).await.unwrap();
    assert_eq!(attached.result().await.unwrap(), "done");
    assert!(attached.is_done());
}

support::backend::backend_matrix! {
    backends: memory #[tokio::test(start_paused = true)], sqlite #[tokio::test];
    cases: [
        attempt_in_flight,
        backing_off,
        started,
        timeouts_keep_running,
        typed_errors_survive,
        cancel_requested,
        outlives_handles_and_dedups,
    ];
}

/// Opens the backend's store as a caller's store.
fn callers(backend: &Backend) -> Open {
    let open = backend.opener();
    Arc::new(move || {
        let store = open();
        Box::pin(async move {
            let store: Arc<dyn CallerStore> = store.await;
            store
        })
    })
}

/// A client without a store keeps the old behaviour: dropping every handle abandons the
/// operation, it is forgotten (it lived in the client's registry only, never in its private
/// store), its completion is refused, and a later call with the same request id starts afresh.
#[tokio::test(start_paused = true)]
async fn without_a_store_dropping_every_handle_abandons() {
    let transport = Scripted::new("t");
    transport.starts([Answer::Async("tok-8".into())]);
    let client = Client::builder()
        .endpoint("echo", transport.clone())
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    let handle = echo
        .echo("hello".into())
        .request_id("req-8")
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    assert_eq!(client.pending_operations(), 1);
    assert!(client.store().get(id).await.unwrap().is_none());
    drop(handle);
    until("the operation is abandoned", || {
        client.pending_operations() == 0
    })
    .await;
    let refused = transport
        .try_complete("tok-8", Ok("late".into()))
        .await
        .unwrap_err();
    assert_eq!(refused.error_type, HandlerErrorType::NotFound);
    let again = echo.echo("hello".into()).request_id("req-8").await.unwrap();
    assert_eq!(again, "hello");
    assert_eq!(transport.start_count(), 2);
}

/// A client without a store keeps its running operations in its registry, which does what a store
/// would: a second call with a running request id follows that operation (no second start), a
/// completion for another token is refused, the same completion twice is acknowledged, and one
/// for an operation that ended otherwise is refused.
#[tokio::test(start_paused = true)]
async fn without_a_store_the_registry_deduplicates_and_checks_completions() {
    use std::future::IntoFuture as _;
    let transport = Scripted::new("t");
    transport.starts([
        Answer::Async("tok-9".into()),
        Answer::Async("tok-10".into()),
    ]);
    let client = Client::builder()
        .endpoint("echo", transport.clone())
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    let first = echo
        .echo("a".into())
        .request_id("req-9")
        .start()
        .await
        .unwrap();
    let second = echo
        .echo("a".into())
        .request_id("req-9")
        .start()
        .await
        .unwrap();
    assert_eq!(second.operation_id(), first.operation_id());
    let awaited = tokio::spawn(echo.echo("a".into()).request_id("req-9").into_future());
    tokio::task::yield_now().await;
    assert_eq!(transport.start_count(), 1, "one start for one request id");
    assert_eq!(client.pending_operations(), 1);

    let wrong = transport
        .try_complete_as("tok-9", "tok-other", Ok("x".into()))
        .await;
    assert_eq!(wrong.unwrap_err().error_type, HandlerErrorType::BadRequest);
    transport
        .try_complete("tok-9", Ok("done".into()))
        .await
        .unwrap();
    transport
        .try_complete("tok-9", Ok("done".into()))
        .await
        .expect("the same completion again is acknowledged");
    let other = transport.try_complete("tok-9", Ok("else".into())).await;
    assert_eq!(other.unwrap_err().error_type, HandlerErrorType::NotFound);
    assert_eq!(first.result().await.unwrap(), "done");
    assert_eq!(second.result().await.unwrap(), "done");
    assert_eq!(awaited.await.unwrap().unwrap(), "done");

    // Ended (canceled, not waiting for the handler) before its completion: refused.
    let third = echo
        .echo("b".into())
        .request_id("req-10")
        .cancellation_type(CancellationType::TryCancel)
        .start()
        .await
        .unwrap();
    third.cancel().await.unwrap();
    let late = transport.try_complete("tok-10", Ok("late".into())).await;
    assert_eq!(late.unwrap_err().error_type, HandlerErrorType::NotFound);
}
