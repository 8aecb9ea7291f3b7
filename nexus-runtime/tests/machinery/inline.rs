//! Awaited calls: for a client built without a store, `.await` on a call runs the operation's
//! driver inline, in the awaiting future, instead of spawning a task. These tests check that it
//! keeps the semantics of the spawned driver: async completions, retries, timeouts, abandonment on
//! drop, cancellation by the enclosing handler's scope, and a record of every transition; and that
//! with a configured store an awaited call stays durable (its operation outlives the future).

use crate::support;

use std::future::{Future as _, IntoFuture as _};
use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::client::EndpointConfig;
use nexus_runtime::completion::Completion;
use nexus_runtime::error::{CallError, HandlerErrorType, OperationError, TimeoutKind};
use nexus_runtime::machinery::{BreakerConfig, Jitter, RetryPolicy};
use nexus_runtime::operation::CallScope;
use nexus_runtime::store::{CallerRecord, CallerStore, MemoryStore, OperationState};
use nexus_runtime::{Client, codec};
use support::scripted::{Answer, EchoClient, Scripted, settle};
use tokio_util::sync::CancellationToken;

fn setup() -> (Scripted, Client, EchoClient) {
    let transport = Scripted::new("t");
    let client = Client::builder()
        .endpoint(
            "echo",
            EndpointConfig::new(transport.clone())
                .retry(RetryPolicy::default().jitter(0.0))
                .breaker(BreakerConfig::disabled()),
        )
        .jitter(Jitter::seeded(5))
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    (transport, client, echo)
}

/// `echo("x")` awaited on a task of its own.
fn spawn_call(echo: &EchoClient) -> tokio::task::JoinHandle<Result<String, CallError>> {
    let echo = echo.clone();
    tokio::spawn(async move { echo.echo("x".into()).await })
}

#[tokio::test(start_paused = true)]
async fn an_awaited_call_retries_and_resolves_by_completion() {
    let (transport, client, echo) = setup();
    transport.starts([Answer::unavailable(), Answer::Async("t1".into())]);
    let call = spawn_call(&echo);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(transport.start_count(), 2, "retried after the backoff");
    assert_eq!(client.pending_operations(), 1);
    transport.complete("t1", Ok("done".into())).await;
    assert_eq!(call.await.expect("joined"), Ok("done".to_owned()));
    assert_eq!(client.pending_operations(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_awaited_call_times_out() {
    let (transport, client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    let result = echo
        .echo("x".into())
        .schedule_to_close_timeout(Duration::from_secs(3))
        .await;
    assert!(
        matches!(
            result,
            Err(CallError::Timeout {
                kind: TimeoutKind::ScheduleToClose,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(client.pending_operations(), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_an_awaited_call_abandons_the_operation() {
    let (transport, client, echo) = setup();
    // Started: dropping the future sends no cancel request and refuses the completion.
    transport.starts([Answer::Async("t1".into())]);
    let call = spawn_call(&echo);
    settle().await;
    assert_eq!(client.pending_operations(), 1);
    call.abort();
    settle().await;
    assert_eq!(client.pending_operations(), 0);
    assert!(transport.seen_cancels().is_empty());
    let refused = transport
        .try_complete("t1", Ok("late".into()))
        .await
        .expect_err("abandoned");
    assert_eq!(refused.error_type, HandlerErrorType::NotFound);

    // Backing off: dropping the future stops the attempts.
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 10));
    let bounded = tokio::time::timeout(Duration::from_millis(1500), echo.echo("y".into())).await;
    assert!(bounded.is_err(), "still retrying when dropped");
    let attempts = transport.start_count();
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(transport.start_count(), attempts);
    assert_eq!(client.pending_operations(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_enclosing_scope_cancels_an_awaited_call() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("child".into())]);
    let enclosing = CancellationToken::new();
    let scope = CallScope {
        deadline: None,
        cancel: enclosing.clone(),
    };
    let call = tokio::spawn(scope.run({
        let echo = echo.clone();
        async move { echo.echo("x".into()).await }
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(transport.seen_cancels().is_empty());
    enclosing.cancel();
    settle().await;
    // WaitCompleted (the default): the cancel request is sent and the call waits for the
    // operation's completion.
    assert_eq!(transport.seen_cancels().len(), 1);
    assert!(!call.is_finished());
    transport
        .complete("child", Err(OperationError::canceled("parent canceled")))
        .await;
    assert!(matches!(
        call.await.expect("joined"),
        Err(CallError::Operation(e)) if e.message == "parent canceled"
    ));
}

/// The one unfinished record of `store`.
async fn only_unfinished(store: &dyn CallerStore) -> CallerRecord {
    let mut unfinished = store.list_unfinished().await.expect("listed");
    assert_eq!(unfinished.len(), 1, "{unfinished:?}");
    unfinished.remove(0)
}

/// A client without a store records nothing, not even in its private store: an awaited call
/// lives in the client's registry while it runs, and the registry checks its completions.
#[tokio::test(start_paused = true)]
async fn an_awaited_call_lives_in_the_registry_while_it_runs() {
    let (transport, client, echo) = setup();
    transport.starts([Answer::unavailable(), Answer::Async("t1".into())]);
    let call = spawn_call(&echo);
    settle().await;
    assert_eq!(transport.start_count(), 1);
    assert_eq!(client.pending_operations(), 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(transport.start_count(), 2);
    let unfinished = client.store().list_unfinished().await.expect("listed");
    assert!(unfinished.is_empty(), "{unfinished:?}");
    // A completion naming another token than the start response gave is refused.
    let refused = transport
        .try_complete_as("t1", "t2", Ok("forged".into()))
        .await
        .expect_err("another token");
    assert_eq!(refused.error_type, HandlerErrorType::BadRequest);
    // So is one for an id that is no operation of this client.
    let unknown = Completion {
        token: "t1".into(),
        outcome: Ok(codec::encode(&"x".to_owned()).expect("encoded")),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    };
    let refused = client
        .deliver_completion(&uuid::Uuid::new_v4().to_string(), None, unknown)
        .await
        .expect_err("unknown id");
    assert_eq!(refused.error_type, HandlerErrorType::NotFound);
    transport.complete("t1", Ok("done".into())).await;
    assert_eq!(call.await.expect("joined"), Ok("done".to_owned()));
    assert_eq!(client.pending_operations(), 0);
}

#[tokio::test(start_paused = true)]
async fn with_a_store_an_awaited_call_is_durable_and_outlives_its_future() {
    let transport = Scripted::new("t");
    let store = Arc::new(MemoryStore::new());
    let client = Client::builder()
        .endpoint(
            "echo",
            EndpointConfig::new(transport.clone()).breaker(BreakerConfig::disabled()),
        )
        .store(store.clone())
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    transport.starts([Answer::Async("t1".into())]);
    let call = spawn_call(&echo);
    settle().await;
    let started = only_unfinished(store.as_ref()).await;
    assert_eq!(started.state, OperationState::Started);
    // Dropping the awaited call does not abandon an operation recorded in a configured store.
    call.abort();
    settle().await;
    assert_eq!(client.pending_operations(), 1);
    transport.complete("t1", Ok("done".into())).await;
    settle().await;
    assert_eq!(client.pending_operations(), 0);
    let finished = store.get(started.id).await.expect("read").expect("kept");
    assert_eq!(finished.state, OperationState::Succeeded);
}

#[test]
fn an_awaited_call_needs_a_tokio_runtime() {
    let (_transport, _client, echo) = setup();
    let mut call = std::pin::pin!(echo.echo("x".into()).into_future());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(result) = call.as_mut().poll(&mut cx) else {
        panic!("a call outside a runtime fails at once");
    };
    assert!(
        matches!(&result, Err(CallError::Invalid(m)) if m.contains("Tokio runtime")),
        "{result:?}"
    );
}
