//! The circuit breaker: when it opens, what a blocked operation shows, the half-open probe.

use crate::support;

use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::client::{CancelState, EndpointConfig, OperationState};
use nexus_runtime::error::{CallError, HandlerError};
use nexus_runtime::machinery::{BREAKER_OPEN_REASON, BreakerState, Jitter, RetryPolicy};
use support::scripted::{Answer, EchoClient, Scripted, secs};
use tokio::time::Instant;

fn setup(retry: RetryPolicy) -> (Scripted, Client, EchoClient) {
    let transport = Scripted::new("t");
    let client = Client::builder()
        .endpoint("echo", EndpointConfig::new(transport.clone()).retry(retry))
        .jitter(Jitter::seeded(1))
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    (transport, client, echo)
}

fn closed(consecutive_failures: u32) -> Option<BreakerState> {
    Some(BreakerState::Closed {
        consecutive_failures,
    })
}

async fn fail_once(transport: &Scripted, echo: &EchoClient) {
    transport.starts([Answer::unavailable()]);
    let error = echo.echo("x".into()).await.expect_err("fails");
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test(start_paused = true)]
async fn opens_on_the_fifth_consecutive_retryable_failure_not_the_fourth() {
    let (transport, client, echo) = setup(RetryPolicy::no_retries());
    assert_eq!(client.breaker_state("echo"), closed(0));
    for n in 1..=4 {
        fail_once(&transport, &echo).await;
        assert_eq!(client.breaker_state("echo"), closed(n));
    }
    let fifth = Instant::now();
    fail_once(&transport, &echo).await;
    assert_eq!(
        client.breaker_state("echo"),
        Some(BreakerState::Open {
            until: fifth + Duration::from_secs(60)
        })
    );
    assert_eq!(client.breaker_state("nowhere"), None);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_count_and_non_retryable_errors_are_successes() {
    let (transport, client, echo) = setup(RetryPolicy::no_retries());
    for _ in 0..4 {
        fail_once(&transport, &echo).await;
    }
    echo.echo("ok".into()).await.expect("succeeds");
    assert_eq!(client.breaker_state("echo"), closed(0));
    for _ in 0..4 {
        fail_once(&transport, &echo).await;
    }
    // The handler answered: a non-retryable error means the target is up.
    transport.starts([Answer::Fail(CallError::Handler(HandlerError::bad_request(
        "no",
    )))]);
    echo.echo("x".into()).await.expect_err("bad request");
    assert_eq!(client.breaker_state("echo"), closed(0));
    for _ in 0..4 {
        fail_once(&transport, &echo).await;
    }
    assert_eq!(client.breaker_state("echo"), closed(4));
}

#[tokio::test(start_paused = true)]
async fn blocked_operations_wait_and_exactly_one_probe_goes_through_half_open() {
    let (transport, client, echo) = setup(RetryPolicy::no_retries());
    for _ in 0..5 {
        fail_once(&transport, &echo).await;
    }
    let opened = Instant::now();
    let until = opened + Duration::from_secs(60);

    // While open, new operations are not failed: they wait, visibly blocked, and send nothing.
    let handles: Vec<_> = (0..3)
        .map(|i| echo.echo(format!("op{i}")).schedule().expect("scheduled"))
        .collect();
    for handle in &handles {
        let info = handle
            .wait_for(|i| i.state == OperationState::Blocked)
            .await;
        assert_eq!(info.state, OperationState::Blocked);
        assert_eq!(info.blocked_reason.as_deref(), Some(BREAKER_OPEN_REASON));
        assert_eq!(info.attempt, 0);
        assert_eq!(info.next_attempt_at, Some(until));
    }
    assert_eq!(transport.start_count(), 5);

    // At the end of the open period exactly one probe goes out; it takes 5 s to answer.
    transport.starts([Answer::after(
        Duration::from_secs(5),
        Answer::Sync("probe".into()),
    )]);
    tokio::time::sleep_until(until + Duration::from_secs(1)).await;
    assert_eq!(transport.start_count(), 6);
    assert_eq!(
        client.breaker_state("echo"),
        Some(BreakerState::HalfOpen {
            probes_in_flight: 1
        })
    );
    let blocked = handles.iter().filter(|h| h.info().attempt == 0).count();
    assert_eq!(blocked, 2, "the others wait for the probe");

    // The probe succeeds: the breaker closes and the others go through.
    let mut outputs = Vec::new();
    for handle in &handles {
        outputs.push(handle.result().await.expect("succeeds"));
        let info = handle.info();
        assert_eq!(info.state, OperationState::Succeeded);
        assert_eq!(info.blocked_reason, None, "the reason goes with the state");
    }
    outputs.sort();
    assert_eq!(outputs.iter().filter(|o| *o == "probe").count(), 1);
    assert_eq!(transport.start_count(), 8);
    assert_eq!(client.breaker_state("echo"), closed(0));
    let times: Vec<f64> = transport.seen_starts()[5..]
        .iter()
        .map(|s| secs(opened, s.at))
        .collect();
    assert_eq!(times, [60.0, 65.0, 65.0]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_for_another_period() {
    let (transport, client, echo) = setup(RetryPolicy::default().jitter(0.0));
    let start = Instant::now();
    // One operation fails five times by itself (attempts at 0, 1, 3, 7, 15 s): the breaker opens
    // at 15 s. The operation backs off 16 s, then waits blocked until 75 s. The probe at 75 s
    // fails and reopens the breaker; after backing off 32 s the operation waits blocked again,
    // and the probe at 135 s succeeds.
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 6));
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    let info = handle
        .wait_for(|i| i.state == OperationState::Blocked)
        .await;
    assert_eq!(secs(start, Instant::now()), 31.0);
    assert_eq!(info.attempt, 5);
    assert_eq!(info.next_attempt_at, Some(start + Duration::from_secs(75)));
    assert!(
        info.last_failure
            .as_deref()
            .is_some_and(CallError::is_retryable)
    );
    assert_eq!(handle.result().await.expect("succeeds at last"), "x");
    let times: Vec<f64> = transport
        .seen_starts()
        .iter()
        .map(|s| secs(start, s.at))
        .collect();
    assert_eq!(times, [0.0, 1.0, 3.0, 7.0, 15.0, 75.0, 135.0]);
    assert_eq!(client.breaker_state("echo"), closed(0));
}

/// An operation held back by an open breaker (open 60 s) whose deadline comes first (30 s) is
/// not left to time out without an attempt: when the time it has left falls to its attempt
/// timeout (10 s), it goes through as the breaker's probe. The handler is back: it succeeds and
/// the breaker closes.
#[tokio::test(start_paused = true)]
async fn a_blocked_operation_gets_one_attempt_before_its_deadline() {
    let (transport, client, echo) = setup(RetryPolicy::no_retries());
    for _ in 0..5 {
        fail_once(&transport, &echo).await;
    }
    let start = Instant::now();
    let output = echo
        .echo("x".into())
        .schedule_to_close_timeout(Duration::from_secs(30))
        .await
        .expect("the last-chance attempt succeeds");
    assert_eq!(output, "x");
    assert_eq!(secs(start, Instant::now()), 20.0);
    assert_eq!(transport.start_count(), 6);
    assert_eq!(client.breaker_state("echo"), closed(0));
}

/// The last-chance attempt of a held-back operation is the breaker's probe: failing (the handler
/// is still down), it ends the operation with its error and opens the breaker for another period.
#[tokio::test(start_paused = true)]
async fn a_failed_last_chance_attempt_reopens_the_breaker() {
    let (transport, client, echo) = setup(RetryPolicy::no_retries());
    for _ in 0..5 {
        fail_once(&transport, &echo).await;
    }
    transport.starts([Answer::unavailable()]);
    let start = Instant::now();
    let error = echo
        .echo("x".into())
        .schedule_to_close_timeout(Duration::from_secs(30))
        .await
        .expect_err("the handler is still down");
    assert_eq!(
        error.as_handler_error().map(|e| e.is_retryable()),
        Some(true),
        "{error}"
    );
    assert_eq!(secs(start, Instant::now()), 20.0);
    assert_eq!(transport.start_count(), 6);
    assert_eq!(
        client.breaker_state("echo"),
        Some(BreakerState::Open {
            until: start + Duration::from_secs(80)
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancel_request_waits_blocked_while_the_breaker_is_open() {
    let (transport, client, echo) = setup(RetryPolicy::no_retries());
    transport.starts([Answer::Async("t1".into())]);
    let handle = echo.echo("x".into()).start().await.expect("started");
    for _ in 0..5 {
        fail_once(&transport, &echo).await;
    }
    let until = Instant::now() + Duration::from_secs(60);
    assert_eq!(
        client.breaker_state("echo"),
        Some(BreakerState::Open { until })
    );

    let canceling = tokio::spawn({
        let handle = handle.clone();
        async move { handle.cancel().await }
    });
    let info = handle
        .wait_for(support::cancel_is(CancelState::Blocked))
        .await;
    let cancellation = info.cancellation.expect("requested");
    assert_eq!(
        cancellation.blocked_reason.as_deref(),
        Some(BREAKER_OPEN_REASON)
    );
    assert_eq!(cancellation.next_attempt_at, Some(until));
    assert_eq!(cancellation.attempt, 0);
    assert!(transport.seen_cancels().is_empty());

    canceling.await.expect("joined").expect("acknowledged");
    assert_eq!(secs(until, transport.seen_cancels()[0].0), 0.0);
    let cancellation = handle.info().cancellation.expect("requested");
    assert_eq!(cancellation.state, CancelState::Succeeded);
    assert_eq!(cancellation.blocked_reason, None);
    assert_eq!(cancellation.attempt, 1);
}
