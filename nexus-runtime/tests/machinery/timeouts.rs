//! Timeouts: every kind expires at its time and names itself; calls made inside a handler inherit
//! the handler's deadline.

use crate::support;

use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::client::{EndpointConfig, OperationState};
use nexus_runtime::error::{CallError, HandlerError, TimeoutKind};
use nexus_runtime::machinery::{BreakerConfig, Jitter, RetryPolicy};
use nexus_runtime::operation::CallScope;
use support::scripted::{Answer, EchoClient, Scripted, secs};
use tokio::time::Instant;

fn setup(config: impl FnOnce(EndpointConfig) -> EndpointConfig) -> (Scripted, EchoClient) {
    let transport = Scripted::new("t");
    let endpoint = config(
        EndpointConfig::new(transport.clone())
            .retry(RetryPolicy::default().jitter(0.0))
            .breaker(BreakerConfig::disabled()),
    );
    let client = Client::builder()
        .endpoint("echo", endpoint)
        .jitter(Jitter::seeded(3))
        .build();
    (transport, EchoClient::new(client, "echo"))
}

fn timeout(kind: TimeoutKind, last_failure: Option<CallError>) -> CallError {
    CallError::Timeout {
        kind,
        last_failure: last_failure.map(Box::new),
    }
}

fn unavailable() -> CallError {
    CallError::Handler(HandlerError::unavailable("try later"))
}

#[tokio::test(start_paused = true)]
async fn the_request_timeout_bounds_each_attempt_and_is_sent_as_the_request_deadline() {
    let (transport, echo) = setup(|e| e);
    // The first attempt never answers: it times out after 10 s (the default) and is retried.
    transport.starts([Answer::Hang]);
    let start = Instant::now();
    let out = echo.echo("x".into()).await.expect("second attempt answers");
    assert_eq!(out, "x");
    let seen = transport.seen_starts();
    assert_eq!(seen.len(), 2);
    assert_eq!(secs(start, seen[1].at), 11.0, "10 s timeout + 1 s backoff");
    for attempt in &seen {
        assert_eq!(
            attempt.request_deadline,
            Some(attempt.at + Duration::from_secs(10))
        );
        assert_eq!(attempt.operation_timeout, None);
    }
}

#[tokio::test(start_paused = true)]
async fn without_retries_the_request_timeout_ends_the_operation() {
    let (transport, echo) = setup(|e| e.retry(RetryPolicy::no_retries()));
    transport.starts([Answer::Hang]);
    let start = Instant::now();
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    assert_eq!(
        handle.result().await,
        Err(timeout(TimeoutKind::Request, None))
    );
    assert_eq!(secs(start, Instant::now()), 10.0);
    assert_eq!(handle.state(), OperationState::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_request_timeout_is_a_retryable_last_failure() {
    let (transport, echo) = setup(|e| e.request_timeout(Duration::from_secs(2)));
    transport.starts(std::iter::repeat_n(Answer::Hang, 10));
    let start = Instant::now();
    let handle = echo
        .echo("x".into())
        .schedule_to_close_timeout(Duration::from_secs(20))
        .schedule()
        .expect("scheduled");
    let error = handle.result().await.expect_err("times out");
    assert_eq!(
        error,
        timeout(
            TimeoutKind::ScheduleToClose,
            Some(timeout(TimeoutKind::Request, None))
        )
    );
    assert_eq!(secs(start, Instant::now()), 20.0);
    // Attempts at 0, 3 (2 s timeout + 1 s backoff), 7 (+2 +2), 13 (+2 +4); the next would be 23.
    let times: Vec<f64> = transport
        .seen_starts()
        .iter()
        .map(|s| secs(start, s.at))
        .collect();
    assert_eq!(times, [0.0, 3.0, 7.0, 13.0]);
    assert_eq!(handle.state(), OperationState::TimedOut);
    // The handler is told how long the whole operation may still take.
    assert_eq!(
        transport.seen_starts()[1].operation_timeout,
        Some(Duration::from_secs(17))
    );
}

#[tokio::test(start_paused = true)]
async fn schedule_to_close_names_itself_and_the_last_failure() {
    let (transport, echo) = setup(|e| e.schedule_to_close_timeout(Duration::from_secs(30)));
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 100));
    let start = Instant::now();
    let error = echo.echo("x".into()).await.expect_err("times out");
    assert_eq!(
        error,
        timeout(TimeoutKind::ScheduleToClose, Some(unavailable()))
    );
    assert_eq!(secs(start, Instant::now()), 30.0);
    // The attempt's request deadline never goes past the operation's deadline.
    let last = transport.seen_starts().pop().expect("attempts");
    assert_eq!(secs(start, last.at), 15.0);
    assert_eq!(
        last.request_deadline,
        Some(last.at + Duration::from_secs(10))
    );
    let capped = {
        transport.starts([Answer::Hang]);
        let start = Instant::now();
        let _ = echo
            .echo("y".into())
            .schedule_to_close_timeout(Duration::from_secs(4))
            .await;
        (transport.seen_starts().pop().expect("attempt"), start)
    };
    assert_eq!(
        capped.0.request_deadline,
        Some(capped.1 + Duration::from_secs(4))
    );
}

#[tokio::test(start_paused = true)]
async fn schedule_to_start_bounds_the_time_until_started() {
    let (transport, echo) = setup(|e| e);
    // Attempts at 0, 1 and 3 s fail; the next would go at 7 s.
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 3));
    let start = Instant::now();
    let error = echo
        .echo("x".into())
        .schedule_to_start_timeout(Duration::from_secs(5))
        .schedule_to_close_timeout(Duration::from_secs(60))
        .await
        .expect_err("never starts");
    assert_eq!(
        error,
        timeout(TimeoutKind::ScheduleToStart, Some(unavailable()))
    );
    assert_eq!(secs(start, Instant::now()), 5.0);
    assert_eq!(transport.start_count(), 3);

    // Once started, schedule-to-start no longer applies.
    transport.starts([Answer::after(
        Duration::from_secs(3),
        Answer::Async("t1".into()),
    )]);
    let handle = echo
        .echo("y".into())
        .schedule_to_start_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("starts in 3 s");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(handle.state(), OperationState::Started);
    transport.complete("t1", Ok("done".into())).await;
    assert_eq!(handle.result().await.expect("completes"), "done");
}

#[tokio::test(start_paused = true)]
async fn start_to_close_bounds_an_async_operation_from_its_start() {
    let (transport, echo) = setup(|e| e.start_to_close_timeout(Duration::from_secs(20)));
    transport.starts([
        Answer::unavailable(),
        Answer::after(Duration::from_secs(2), Answer::Async("t1".into())),
    ]);
    let start = Instant::now();
    let handle = echo.echo("x".into()).start().await.expect("starts");
    assert_eq!(handle.token(), Some("t1"));
    let started = Instant::now();
    assert_eq!(secs(start, started), 3.0);
    // The handler is told the operation may take 20 s.
    assert_eq!(
        transport.seen_starts()[1].operation_timeout,
        Some(Duration::from_secs(20))
    );
    let error = handle.result().await.expect_err("no completion");
    assert_eq!(
        error,
        timeout(TimeoutKind::StartToClose, Some(unavailable()))
    );
    assert_eq!(secs(started, Instant::now()), 20.0);
    assert_eq!(handle.info().state, OperationState::TimedOut);
    // No cancel request is sent on a timeout; the handler has its own Operation-Timeout.
    assert!(transport.seen_cancels().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_call_inside_a_handler_inherits_the_smaller_deadline() {
    let (transport, echo) = setup(|e| e.schedule_to_close_timeout(Duration::from_secs(60)));
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 100));
    let start = Instant::now();
    let scope = CallScope {
        deadline: Some(start + Duration::from_secs(4)),
        cancel: Default::default(),
    };
    let error = scope
        .run(async { echo.echo("x".into()).await })
        .await
        .expect_err("the handler's deadline expires");
    assert_eq!(
        error,
        timeout(TimeoutKind::ScheduleToClose, Some(unavailable()))
    );
    assert_eq!(secs(start, Instant::now()), 4.0);
    let seen = transport.seen_starts();
    assert_eq!(seen[0].operation_timeout, Some(Duration::from_secs(4)));
    assert_eq!(
        seen[0].request_deadline,
        Some(start + Duration::from_secs(4))
    );

    // A scope deadline later than the call's own does not extend it.
    let start = Instant::now();
    let scope = CallScope {
        deadline: Some(start + Duration::from_secs(600)),
        cancel: Default::default(),
    };
    let error = scope
        .run(async {
            echo.echo("y".into())
                .schedule_to_close_timeout(Duration::from_secs(2))
                .await
        })
        .await
        .expect_err("the call's own deadline expires");
    assert!(matches!(
        error,
        CallError::Timeout {
            kind: TimeoutKind::ScheduleToClose,
            ..
        }
    ));
    assert_eq!(secs(start, Instant::now()), 2.0);
}
