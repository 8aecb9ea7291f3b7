//! Cancellation: the four cancellation types, cancel requests retried like starts, cancellation
//! before the start, dropping handles, and cancellation by the enclosing handler's scope.

use crate::support;

use std::time::Duration;

use nexus_runtime::client::{CancelState, EndpointConfig, OperationState};
use nexus_runtime::error::{CallError, HandlerError, HandlerErrorType, OperationError};
use nexus_runtime::machinery::{BreakerConfig, Jitter, RetryPolicy};
use nexus_runtime::operation::CallScope;
use nexus_runtime::{CancellationType, Client};
use support::scripted::{Answer, EchoClient, Scripted, secs, settle};
use tokio::time::Instant;
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

fn cancel_state(handle: &nexus_runtime::OperationHandle<support::scripted::EchoOp>) -> CancelState {
    handle
        .info()
        .cancellation
        .expect("cancellation requested")
        .state
}

#[tokio::test(start_paused = true)]
async fn abandon_sends_no_request_and_stops_waiting_at_once() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    let handle = echo
        .echo("x".into())
        .cancellation_type(CancellationType::Abandon)
        .start()
        .await
        .expect("started");
    let start = Instant::now();
    handle.cancel().await.expect("abandoned");
    assert_eq!(handle.result().await, Err(CallError::Canceled));
    assert_eq!(Instant::now(), start);
    assert_eq!(handle.state(), OperationState::Canceled);
    assert_eq!(cancel_state(&handle), CancelState::NotSent);
    settle().await;
    assert!(transport.seen_cancels().is_empty());
    // The handler's completion is no longer awaited.
    let refused = transport
        .try_complete("t1", Ok("late".into()))
        .await
        .expect_err("nobody waits");
    assert_eq!(refused.error_type, HandlerErrorType::NotFound);
}

#[tokio::test(start_paused = true)]
async fn try_cancel_stops_waiting_at_once_and_sends_the_request_in_the_background() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    transport.cancels([Answer::after(
        Duration::from_secs(5),
        Answer::Sync(String::new()),
    )]);
    let handle = echo
        .echo("x".into())
        .cancellation_type(CancellationType::TryCancel)
        .start()
        .await
        .expect("started");
    let start = Instant::now();
    handle.cancel().await.expect("requested");
    assert_eq!(handle.result().await, Err(CallError::Canceled));
    assert_eq!(Instant::now(), start, "no waiting for the handler");
    let info = handle
        .wait_for(support::cancel_is(CancelState::Succeeded))
        .await;
    assert_eq!(secs(start, Instant::now()), 5.0);
    assert_eq!(info.state, OperationState::Canceled);
    assert_eq!(transport.seen_cancels(), [(start, "t1".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn wait_requested_returns_once_the_handler_acknowledged() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    transport.cancels([Answer::after(
        Duration::from_secs(5),
        Answer::Sync(String::new()),
    )]);
    let handle = echo
        .echo("x".into())
        .cancellation_type(CancellationType::WaitRequested)
        .start()
        .await
        .expect("started");
    let start = Instant::now();
    let waiter = tokio::spawn({
        let handle = handle.clone();
        async move { (handle.result().await, Instant::now()) }
    });
    handle.cancel().await.expect("acknowledged");
    assert_eq!(secs(start, Instant::now()), 5.0);
    let (result, at) = waiter.await.expect("joined");
    assert_eq!(result, Err(CallError::Canceled));
    assert_eq!(secs(start, at), 5.0);
    assert_eq!(cancel_state(&handle), CancelState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn wait_completed_keeps_waiting_for_the_completion() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    transport.cancels([Answer::after(
        Duration::from_secs(1),
        Answer::Sync(String::new()),
    )]);
    let handle = echo.echo("x".into()).start().await.expect("started");
    let start = Instant::now();
    handle.cancel().await.expect("acknowledged");
    assert_eq!(secs(start, Instant::now()), 1.0);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!handle.is_done(), "still waiting for the completion");
    assert_eq!(handle.state(), OperationState::Started);
    assert_eq!(cancel_state(&handle), CancelState::Succeeded);
    let canceled = OperationError::canceled("stopped on request");
    transport.complete("t1", Err(canceled.clone())).await;
    assert_eq!(handle.result().await, Err(CallError::Operation(canceled)));
    assert_eq!(handle.state(), OperationState::Canceled);
}

#[tokio::test(start_paused = true)]
async fn cancel_requests_are_retried_like_starts() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    transport.cancels([Answer::unavailable(), Answer::unavailable()]);
    let handle = echo.echo("x".into()).start().await.expect("started");
    let start = Instant::now();
    handle
        .cancel()
        .await
        .expect("third cancel attempt acknowledged");
    let times: Vec<f64> = transport
        .seen_cancels()
        .iter()
        .map(|(at, _)| secs(start, *at))
        .collect();
    assert_eq!(times, [0.0, 1.0, 3.0]);
    let cancellation = handle.info().cancellation.expect("requested");
    assert_eq!(cancellation.attempt, 3);
    assert_eq!(cancellation.state, CancelState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_request_that_fails_for_good_is_reported() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    let not_found = HandlerError::not_found("no such operation");
    transport.cancels([Answer::Fail(CallError::Handler(not_found.clone()))]);
    let handle = echo.echo("x".into()).start().await.expect("started");
    assert_eq!(handle.cancel().await, Err(CallError::Handler(not_found)));
    assert_eq!(handle.state(), OperationState::Started);
    assert_eq!(cancel_state(&handle), CancelState::Failed);
    // A later cancel tries again.
    handle.cancel().await.expect("acknowledged");
    assert_eq!(transport.seen_cancels().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn canceling_before_the_start_stops_the_operation_whatever_the_type() {
    for cancellation_type in [
        CancellationType::Abandon,
        CancellationType::TryCancel,
        CancellationType::WaitRequested,
        CancellationType::WaitCompleted,
    ] {
        let (transport, _client, echo) = setup();
        transport.starts(std::iter::repeat_n(Answer::unavailable(), 10));
        let handle = echo
            .echo("x".into())
            .cancellation_type(cancellation_type)
            .schedule()
            .expect("scheduled");
        handle
            .wait_for(|i| i.state == OperationState::BackingOff)
            .await;
        handle.cancel().await.expect("stopped");
        assert_eq!(handle.result().await, Err(CallError::Canceled));
        assert_eq!(cancel_state(&handle), CancelState::NotSent);
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(transport.start_count(), 1, "{cancellation_type:?}");
        assert!(transport.seen_cancels().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn canceling_during_the_start_request_cancels_what_it_started() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::after(
        Duration::from_secs(2),
        Answer::Async("t1".into()),
    )]);
    let start = Instant::now();
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.cancel().await.expect("acknowledged");
    assert_eq!(
        transport.seen_cancels(),
        [(start + Duration::from_secs(2), "t1".into())]
    );
    transport
        .complete("t1", Err(OperationError::canceled("canceled")))
        .await;
    assert!(matches!(
        handle.result().await,
        Err(CallError::Operation(e)) if e.message == "canceled"
    ));
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_abandons_the_operation() {
    let (transport, client, echo) = setup();
    // A started operation: no cancel request, and its completion is refused.
    transport.starts([Answer::Async("t1".into())]);
    let handle = echo.echo("x".into()).start().await.expect("started");
    let clone = handle.clone();
    assert_eq!(client.pending_operations(), 1);
    drop(handle);
    settle().await;
    assert_eq!(client.pending_operations(), 1, "a clone still holds it");
    drop(clone);
    settle().await;
    assert_eq!(client.pending_operations(), 0);
    assert!(transport.seen_cancels().is_empty());
    let refused = transport
        .try_complete("t1", Ok("late".into()))
        .await
        .expect_err("abandoned");
    assert_eq!(refused.error_type, HandlerErrorType::NotFound);

    // An operation backing off: no further attempts.
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 10));
    let handle = echo.echo("y".into()).schedule().expect("scheduled");
    handle
        .wait_for(|i| i.state == OperationState::BackingOff)
        .await;
    let attempts = transport.start_count();
    drop(handle);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(transport.start_count(), attempts);
    assert_eq!(client.pending_operations(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_enclosing_operations_cancellation_cancels_a_call_made_inside_it() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("child".into())]);
    let enclosing = CancellationToken::new();
    let scope = CallScope {
        deadline: None,
        cancel: enclosing.clone(),
    };
    let handle = scope
        .run(async { echo.echo("x".into()).start().await })
        .await
        .expect("started");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(transport.seen_cancels().is_empty());
    enclosing.cancel();
    let info = handle
        .wait_for(support::cancel_is(CancelState::Succeeded))
        .await;
    assert_eq!(info.state, OperationState::Started, "WaitCompleted waits");
    assert_eq!(transport.seen_cancels().len(), 1);
    transport
        .complete("child", Err(OperationError::canceled("parent canceled")))
        .await;
    assert!(matches!(
        handle.result().await,
        Err(CallError::Operation(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_requested_cancellation_survives_dropping_the_handle() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("child".into())]);
    transport.cancels([Answer::unavailable()]);
    let enclosing = CancellationToken::new();
    let scope = CallScope {
        deadline: None,
        cancel: enclosing.clone(),
    };
    let handle = scope
        .run(async { echo.echo("x".into()).start().await })
        .await
        .expect("started");
    // The enclosing operation is canceled and its work drops the call at once.
    enclosing.cancel();
    drop(handle);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        transport.seen_cancels().len(),
        2,
        "the cancel request was sent, and retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_completion_that_overtakes_the_cancel_request_ends_it() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    // The cancel request is acknowledged only after 5 s; the completion comes at 1 s.
    transport.cancels([Answer::after(
        Duration::from_secs(5),
        Answer::Sync(String::new()),
    )]);
    let handle = echo
        .echo("x".into())
        .cancellation_type(CancellationType::WaitRequested)
        .start()
        .await
        .expect("started");
    let canceling = tokio::spawn({
        let handle = handle.clone();
        async move { handle.cancel().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(cancel_state(&handle), CancelState::Scheduled);
    let canceled = OperationError::canceled("stopped before the request arrived");
    transport.complete("t1", Err(canceled.clone())).await;
    assert_eq!(handle.result().await, Err(CallError::Operation(canceled)));
    canceling
        .await
        .expect("joined")
        .expect("a cancel overtaken by the end is not an error");
    assert_eq!(handle.state(), OperationState::Canceled);
    assert_eq!(cancel_state(&handle), CancelState::OperationEnded);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_ends_a_cancel_request_still_under_way() {
    let (transport, _client, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    transport.cancels([Answer::Hang]);
    let handle = echo
        .echo("x".into())
        .cancellation_type(CancellationType::WaitRequested)
        .schedule_to_close_timeout(Duration::from_secs(3))
        .start()
        .await
        .expect("started");
    let canceling = tokio::spawn({
        let handle = handle.clone();
        async move { handle.cancel().await }
    });
    assert!(matches!(
        handle.result().await,
        Err(CallError::Timeout { .. })
    ));
    assert_eq!(handle.state(), OperationState::TimedOut);
    assert_eq!(cancel_state(&handle), CancelState::OperationEnded);
    let _ = canceling.await.expect("joined");
    settle().await;
    let cancels = transport.seen_cancels().len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        transport.seen_cancels().len(),
        cancels,
        "no attempt after the end"
    );
}
