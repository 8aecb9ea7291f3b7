//! Retries: the backoff schedule, what is retried and what is not, the request id.

use crate::support;

use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::client::{EndpointConfig, OperationState};
use nexus_runtime::error::{
    CallError, HandlerError, HandlerErrorType, OperationError, TransportError, TransportErrorKind,
};
use nexus_runtime::machinery::{BreakerConfig, Jitter, RetryPolicy};
use support::scripted::{Answer, EchoClient, Scripted, secs, settle};
use tokio::time::Instant;

const SEED: u64 = 42;

fn client(transport: &Scripted, retry: RetryPolicy) -> EchoClient {
    let client = Client::builder()
        .endpoint(
            "echo",
            EndpointConfig::new(transport.clone())
                .retry(retry)
                .breaker(BreakerConfig::disabled()),
        )
        .jitter(Jitter::seeded(SEED))
        .build();
    EchoClient::new(client, "echo")
}

fn attempt_times(transport: &Scripted, start: Instant) -> Vec<f64> {
    transport
        .seen_starts()
        .iter()
        .map(|s| secs(start, s.at))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_follows_the_seeded_full_jitter_schedule_exactly() {
    let transport = Scripted::new("t");
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 6));
    let echo = client(&transport, RetryPolicy::default());
    let start = Instant::now();
    let out = echo.echo("hi".into()).await.expect("succeeds on attempt 7");
    assert_eq!(out, "hi");

    // The same policy and seed, computed independently of the driver.
    let policy = RetryPolicy::default();
    let jitter = Jitter::seeded(SEED);
    let mut expected = vec![Duration::ZERO];
    for retry in 1..=6 {
        let last = *expected.last().expect("non-empty");
        expected.push(last + policy.delay(retry, jitter.next_fraction()));
    }
    let seen: Vec<Duration> = transport
        .seen_starts()
        .iter()
        .map(|s| s.at - start)
        .collect();
    assert_eq!(seen, expected);
    // Pinned, so a change of the schedule (or of the random generator) is noticed.
    let millis: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
    assert_eq!(millis, [0, 652, 2081, 4108, 9165, 11955, 41803]);
    // Full jitter: each delay lies in (0, 1 s * 2^(n-1)].
    for (n, pair) in seen.windows(2).enumerate() {
        let delay = pair[1] - pair[0];
        let cap = Duration::from_secs(1 << n);
        assert!(
            delay > Duration::ZERO && delay <= cap,
            "retry {n}: {delay:?}"
        );
    }
    // Another seed gives another schedule.
    let other = Jitter::seeded(SEED + 1);
    assert_ne!(policy.delay(1, other.next_fraction()), seen[1]);
}

#[tokio::test(start_paused = true)]
async fn without_jitter_the_schedule_is_temporals_exponential_one() {
    let transport = Scripted::new("t");
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 5));
    let echo = client(&transport, RetryPolicy::default().jitter(0.0));
    let start = Instant::now();
    echo.echo("hi".into()).await.expect("succeeds on attempt 6");
    assert_eq!(
        attempt_times(&transport, start),
        [0.0, 1.0, 3.0, 7.0, 15.0, 31.0]
    );
}

#[tokio::test(start_paused = true)]
async fn maximum_interval_caps_the_backoff() {
    let transport = Scripted::new("t");
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 4));
    let policy = RetryPolicy::default()
        .jitter(0.0)
        .maximum_interval(Duration::from_secs(3));
    let echo = client(&transport, policy);
    let start = Instant::now();
    echo.echo("x".into()).await.expect("succeeds");
    assert_eq!(attempt_times(&transport, start), [0.0, 1.0, 3.0, 6.0, 9.0]);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_carries_the_same_request_id() {
    let transport = Scripted::new("t");
    transport.starts([
        Answer::unavailable(),
        Answer::Fail(CallError::Transport(TransportError::new(
            TransportErrorKind::Connect,
            "connection refused",
        ))),
        Answer::Sync("ok".into()),
    ]);
    let echo = client(&transport, RetryPolicy::default());
    let out = echo
        .echo("x".into())
        .request_id("order-42")
        .await
        .expect("third attempt succeeds");
    assert_eq!(out, "ok");
    let ids: Vec<String> = transport
        .seen_starts()
        .into_iter()
        .map(|s| s.request_id)
        .collect();
    assert_eq!(ids, ["order-42", "order-42", "order-42"]);

    // A generated id is also reused.
    transport.starts([Answer::unavailable()]);
    echo.echo("y".into())
        .await
        .expect("second attempt succeeds");
    let starts = transport.seen_starts();
    assert_eq!(starts.len(), 5);
    assert_eq!(starts[3].request_id, starts[4].request_id);
    assert_ne!(starts[3].request_id, "order-42");
}

#[tokio::test(start_paused = true)]
async fn non_retryable_handler_errors_stop_at_once() {
    for (error, retried) in [
        (HandlerError::bad_request("bad"), false),
        (HandlerError::not_found("gone"), false),
        (
            HandlerError::internal("corrupt").with_retryable(false),
            false,
        ),
        (
            HandlerError::bad_request("flaky").with_retryable(true),
            true,
        ),
        (HandlerError::resource_exhausted("busy"), true),
        (HandlerError::upstream_timeout("slow"), true),
    ] {
        let transport = Scripted::new("t");
        transport.starts([Answer::Fail(CallError::Handler(error.clone()))]);
        let echo = client(&transport, RetryPolicy::default());
        let result = echo.echo("x".into()).await;
        if retried {
            assert_eq!(result.expect("retried, then ok"), "x");
            assert_eq!(transport.start_count(), 2, "{error}");
        } else {
            assert_eq!(result, Err(CallError::Handler(error.clone())));
            assert_eq!(transport.start_count(), 1, "{error}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn operation_errors_are_never_retried() {
    let transport = Scripted::new("t");
    let failed = OperationError::failed("card declined");
    transport.starts([Answer::Fail(CallError::Operation(failed.clone()))]);
    let echo = client(&transport, RetryPolicy::default());
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    assert_eq!(handle.result().await, Err(CallError::Operation(failed)));
    assert_eq!(handle.state(), OperationState::Failed);
    assert_eq!(transport.start_count(), 1);

    let canceled = OperationError::canceled("stopped");
    transport.starts([Answer::Fail(CallError::Operation(canceled.clone()))]);
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    assert_eq!(handle.result().await, Err(CallError::Operation(canceled)));
    assert_eq!(handle.state(), OperationState::Canceled);
    assert_eq!(transport.start_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn transport_failures_are_retried_unless_the_transport_is_unusable() {
    let transport = Scripted::new("t");
    let connect = TransportError::new(TransportErrorKind::Connect, "refused");
    let broken = TransportError::new(TransportErrorKind::Unavailable, "closed");
    transport.starts([
        Answer::Fail(CallError::Transport(connect)),
        Answer::Fail(CallError::Transport(broken.clone())),
    ]);
    let echo = client(&transport, RetryPolicy::default());
    assert_eq!(
        echo.echo("x".into()).await,
        Err(CallError::Transport(broken))
    );
    assert_eq!(transport.start_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn maximum_attempts_ends_with_the_last_error() {
    let transport = Scripted::new("t");
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 10));
    let echo = client(&transport, RetryPolicy::default().maximum_attempts(3));
    let error = echo.echo("x".into()).await.expect_err("retries run out");
    let handler = error.as_handler_error().expect("a handler error");
    assert_eq!(handler.error_type, HandlerErrorType::Unavailable);
    assert_eq!(transport.start_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_call_can_override_the_endpoint_policy() {
    let transport = Scripted::new("t");
    transport.starts(std::iter::repeat_n(Answer::unavailable(), 2));
    let echo = client(&transport, RetryPolicy::no_retries());
    let start = Instant::now();
    let out = echo
        .echo("x".into())
        .retry_policy(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(100))
                .jitter(0.0),
        )
        .await
        .expect("the call's policy retries");
    assert_eq!(out, "x");
    assert_eq!(attempt_times(&transport, start), [0.0, 0.1, 0.3]);
}

#[tokio::test(start_paused = true)]
async fn a_pending_operation_shows_its_backoff() {
    let transport = Scripted::new("t");
    let unavailable = CallError::Handler(HandlerError::unavailable("try later"));
    transport.starts([Answer::unavailable(), Answer::unavailable()]);
    let echo = client(&transport, RetryPolicy::default().jitter(0.0));
    let start = Instant::now();
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    settle().await;
    let info = handle.info();
    assert_eq!(info.state, OperationState::BackingOff);
    assert_eq!(info.attempt, 1);
    assert_eq!(info.last_failure.as_deref(), Some(&unavailable));
    assert_eq!(info.next_attempt_at, Some(start + Duration::from_secs(1)));
    assert_eq!(info.token, None);

    let info = handle
        .wait_for(|i| i.attempt == 2 && i.state == OperationState::BackingOff)
        .await;
    assert_eq!(info.next_attempt_at, Some(start + Duration::from_secs(3)));
    assert_eq!(handle.result().await.expect("third attempt"), "x");
    let info = handle.info();
    assert_eq!(info.state, OperationState::Succeeded);
    assert_eq!(info.attempt, 3);
    assert_eq!(info.closed_at, Some(start + Duration::from_secs(3)));
    assert!(handle.is_sync());
}
