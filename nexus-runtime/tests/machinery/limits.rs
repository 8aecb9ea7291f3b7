//! Limits (concurrency, rate, queue bound) and load balancing across an endpoint's targets.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::client::{EndpointConfig, OperationState};
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::machinery::{BreakerConfig, BreakerState, Jitter, Limits, RetryPolicy};
use nexus_runtime::transport::Transport;
use support::scripted::{Answer, EchoClient, Scripted, secs};
use tokio::time::Instant;

fn client(config: EndpointConfig) -> (Client, EchoClient) {
    let client = Client::builder()
        .endpoint("echo", config)
        .jitter(Jitter::seeded(9))
        .build();
    (client.clone(), EchoClient::new(client, "echo"))
}

#[tokio::test(start_paused = true)]
async fn excess_operations_queue_up_to_the_bound_then_fail_locally() {
    let transport = Scripted::new("t");
    let slow = || Answer::after(Duration::from_secs(1), Answer::Sync("done".into()));
    transport.starts([slow(), slow(), slow()]);
    let (_client, echo) = client(
        EndpointConfig::new(transport.clone())
            .limits(Limits::default().max_concurrency(1).queue_bound(2)),
    );
    let start = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|i| echo.echo(format!("op{i}")).schedule().expect("scheduled"))
        .collect();
    for handle in &handles {
        handle.wait_for(|i| i.attempt == 1).await;
    }
    // One in flight, two waiting in the queue: the queue is full.
    assert_eq!(transport.start_count(), 1);
    let error = echo
        .echo("op3".into())
        .await
        .expect_err("past the queue bound");
    let handler = error.as_handler_error().expect("a handler error");
    assert_eq!(handler.error_type, HandlerErrorType::ResourceExhausted);
    assert!(
        handler.message.contains("local queue") && handler.message.contains("queue bound 2"),
        "{}",
        handler.message
    );
    assert_eq!(Instant::now(), start, "fails at once, without waiting");
    // The queued operations are pending, not failed, and go one at a time.
    for handle in &handles {
        assert_eq!(handle.result().await.expect("served"), "done");
    }
    let times: Vec<f64> = transport
        .seen_starts()
        .iter()
        .map(|s| secs(start, s.at))
        .collect();
    assert_eq!(times, [0.0, 1.0, 2.0]);
    let inputs: Vec<String> = transport
        .seen_starts()
        .into_iter()
        .map(|s| s.input)
        .collect();
    assert_eq!(
        inputs,
        ["op0", "op1", "op2"],
        "first come, first served; op3 never sent"
    );

    // Room again: a new operation is accepted.
    echo.echo("later".into()).await.expect("accepted");
}

#[tokio::test(start_paused = true)]
async fn a_zero_bound_fails_as_soon_as_the_limit_is_reached() {
    let transport = Scripted::new("t");
    transport.starts([Answer::after(
        Duration::from_secs(1),
        Answer::Sync("a".into()),
    )]);
    let (_client, echo) = client(
        EndpointConfig::new(transport.clone())
            .limits(Limits::default().max_concurrency(1).queue_bound(0)),
    );
    let first = echo.echo("a".into()).schedule().expect("scheduled");
    first.wait_for(|i| i.attempt == 1).await;
    let error = echo.echo("b".into()).await.expect_err("no queue");
    assert_eq!(
        error.as_handler_error().map(|e| e.error_type.clone()),
        Some(HandlerErrorType::ResourceExhausted)
    );
    assert_eq!(first.result().await.expect("served"), "a");
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spreads_attempts_over_time() {
    let transport = Scripted::new("t");
    let (_client, echo) = client(
        EndpointConfig::new(transport.clone())
            .limits(Limits::unlimited().rate_limit(2, Duration::from_secs(1))),
    );
    let start = Instant::now();
    let handles: Vec<_> = (0..5)
        .map(|i| echo.echo(format!("op{i}")).schedule().expect("scheduled"))
        .collect();
    for handle in &handles {
        handle.wait_for(|i| i.attempt == 1).await;
    }
    assert_eq!(handles[2].info().state, OperationState::Scheduled);
    assert_eq!(
        handles[2].info().attempt,
        1,
        "its attempt waits in the queue"
    );
    for handle in &handles {
        handle.result().await.expect("served");
    }
    let times: Vec<f64> = transport
        .seen_starts()
        .iter()
        .map(|s| secs(start, s.at))
        .collect();
    assert_eq!(times, [0.0, 0.0, 1.0, 1.0, 2.0]);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_starts_when_the_attempt_leaves_the_queue() {
    let transport = Scripted::new("t");
    let slow = || Answer::after(Duration::from_secs(8), Answer::Sync("done".into()));
    transport.starts([slow(), slow()]);
    let (_client, echo) =
        client(EndpointConfig::new(transport.clone()).limits(Limits::default().max_concurrency(1)));
    let start = Instant::now();
    let a = echo.echo("a".into()).schedule().expect("scheduled");
    let b = echo.echo("b".into()).schedule().expect("scheduled");
    assert_eq!(a.result().await.expect("8 s < 10 s"), "done");
    assert_eq!(b.result().await.expect("queued 8 s, then 8 s"), "done");
    assert_eq!(secs(start, Instant::now()), 16.0);
    let second = &transport.seen_starts()[1];
    assert_eq!(
        second.request_deadline,
        Some(start + Duration::from_secs(18))
    );
}

#[tokio::test(start_paused = true)]
async fn round_robin_skips_a_target_whose_breaker_is_open() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let targets: Vec<Arc<dyn Transport>> = vec![Arc::new(a.clone()), Arc::new(b.clone())];
    let (client, echo) = client(
        EndpointConfig::with_targets(targets)
            .breaker(BreakerConfig::default().failure_threshold(2))
            .retry(RetryPolicy::default().jitter(0.0)),
    );
    // Healthy: the targets alternate.
    for i in 0..4 {
        echo.echo(format!("op{i}")).await.expect("served");
    }
    assert_eq!((a.start_count(), b.start_count()), (2, 2));

    // Target `a` fails twice in a row: its breaker opens; each failed attempt is retried on `b`.
    a.starts([Answer::unavailable(), Answer::unavailable()]);
    for i in 4..8 {
        echo.echo(format!("op{i}")).await.expect("served by b");
    }
    assert!(matches!(
        client.breaker_states("echo")[..],
        [BreakerState::Open { .. }, BreakerState::Closed { .. }]
    ));
    let a_before = a.start_count();
    let b_before = b.start_count();
    for i in 8..12 {
        echo.echo(format!("op{i}")).await.expect("served by b");
    }
    assert_eq!(a.start_count(), a_before, "the open target is skipped");
    assert_eq!(b.start_count(), b_before + 4);

    // After the open period `a` gets its probe again, and the rotation resumes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    for i in 12..16 {
        echo.echo(format!("op{i}")).await.expect("served");
    }
    assert_eq!(a.start_count(), a_before + 2);
    assert_eq!(b.start_count(), b_before + 6);
    assert!(matches!(
        client.breaker_states("echo")[..],
        [BreakerState::Closed { .. }, BreakerState::Closed { .. }]
    ));
}

#[tokio::test(start_paused = true)]
async fn an_operation_waits_only_when_every_target_is_open() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let targets: Vec<Arc<dyn Transport>> = vec![Arc::new(a.clone()), Arc::new(b.clone())];
    let (_client, echo) = client(
        EndpointConfig::with_targets(targets)
            .breaker(BreakerConfig::default().failure_threshold(1))
            .retry(RetryPolicy::default().jitter(0.0)),
    );
    a.starts([Answer::unavailable()]);
    b.starts([Answer::unavailable()]);
    let start = Instant::now();
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    let info = handle
        .wait_for(|i| i.state == OperationState::Blocked)
        .await;
    // Attempt 1 on `a` at 0 s, attempt 2 on `b` at 1 s; both breakers are open.
    assert_eq!(info.attempt, 2);
    assert_eq!(info.next_attempt_at, Some(start + Duration::from_secs(60)));
    assert_eq!(handle.result().await.expect("a's probe succeeds"), "x");
    assert_eq!(secs(start, Instant::now()), 60.0);
    assert_eq!(handle.info().target, Some(0));
}
