//! Fault tests over real loopback HTTP (port 0): the machinery (retries, circuit breaker, request
//! and schedule-to-close timeouts, cancellation, load balancing, completion delivery) driven by a
//! real `Client` through `HttpTransport` against handlers that misbehave: 503 bursts, reset and
//! closed connections, refused connections, handlers that never answer, a callback receiver that
//! is down.
//!
//! Real time with short intervals (sockets and paused time do not mix: paused time jumps ahead
//! whenever the runtime waits on I/O), jitter 0 for exact backoff delays, and assertions on what
//! each side recorded rather than on wall-clock coincidences.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use nexus_runtime::client::{CancelState, EndpointConfig, OperationState};
use nexus_runtime::completion::{Completion, CompletionSender};
use nexus_runtime::error::{HandlerErrorType, TimeoutKind, TransportErrorKind};
use nexus_runtime::machinery::{
    BREAKER_OPEN_REASON, BreakerConfig, BreakerState, Jitter, RetryPolicy,
};
use nexus_runtime::server::{
    CallbackListener, CallbackReceiver, CompletionRetry, DEFAULT_CALLBACK_PATH, DeliveryReport,
    HandlerServer, HttpCompletionSender,
};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::{HttpTransport, Transport};
use nexus_runtime::{CallError, CancellationType, Client, HandlerError, OperationHandle};
use support::faults::{
    Exchange, Fault, FaultyClient, FaultyListener, Handler, Running, Silent, WireLog, head_header,
    ms, spawn,
};
use tokio::net::TcpListener;
use tokio::time::Instant;

fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Retries every `n` ms exactly.
fn every(n: u64) -> RetryPolicy {
    RetryPolicy::default()
        .initial_interval(millis(n))
        .backoff_coefficient(1.0)
        .jitter(0.0)
}

/// Fails the test if `future` takes more than 5 s (every wait here should take well under 2 s).
async fn within<T>(what: &str, future: impl IntoFuture<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future.into_future())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A handler server for `handler` on loopback, its requests logged by `wire`.
async fn serve_handler(handler: &Handler, wire: &WireLog) -> (Dispatcher, Running) {
    let dispatcher = handler.dispatcher();
    let router = HandlerServer::new(dispatcher.clone()).router();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (dispatcher, spawn(listener, wire.wrap(router)))
}

fn endpoint(server: &Running) -> EndpointConfig {
    EndpointConfig::new(HttpTransport::new(server.url()).unwrap())
}

/// A client with one endpoint `faults`, and its callback receiver on loopback.
struct Caller {
    client: Client,
    stub: FaultyClient,
    /// What the callback receiver was sent and answered.
    receiver_wire: WireLog,
    _receiver: Running,
}

async fn caller(endpoint: EndpointConfig) -> Caller {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::builder()
        .endpoint("faults", endpoint)
        .callback_url(format!("http://{addr}{DEFAULT_CALLBACK_PATH}"))
        .jitter(Jitter::seeded(7))
        .build();
    let receiver_wire = WireLog::default();
    let receiver = spawn(
        listener,
        receiver_wire.wrap(CallbackReceiver::new(client.clone()).router()),
    );
    Caller {
        stub: FaultyClient::new(client.clone(), "faults"),
        client,
        receiver_wire,
        _receiver: receiver,
    }
}

fn assert_unavailable(failure: Option<&CallError>) {
    let error = failure
        .and_then(CallError::as_handler_error)
        .unwrap_or_else(|| panic!("expected an UNAVAILABLE failure, got {failure:?}"));
    assert_eq!(error.error_type, HandlerErrorType::Unavailable, "{error}");
    assert!(error.is_retryable());
}

fn assert_connect_failure(failure: Option<&CallError>, addr: &str) {
    match failure {
        Some(CallError::Transport(t)) => {
            assert_eq!(t.kind, TransportErrorKind::Connect, "{t}");
            assert!(t.is_retryable());
            assert!(t.message.contains(addr), "the failure names the peer: {t}");
        }
        other => panic!("expected a Connect transport failure, got {other:?}"),
    }
}

/// Waits for the operation to end; returns its last info and the failures it showed while backing
/// off (a success clears `last_failure`).
async fn run_to_end<Op: nexus_runtime::Operation>(
    handle: &OperationHandle<Op>,
) -> (nexus_runtime::client::OperationInfo, Vec<CallError>) {
    let mut failures: Vec<(u32, CallError)> = Vec::new();
    let info = within(
        "the operation to end",
        handle.wait_for(|i| {
            if i.state == OperationState::BackingOff
                && let Some(failure) = &i.last_failure
                && failures
                    .last()
                    .is_none_or(|(attempt, _)| *attempt != i.attempt)
            {
                failures.push((i.attempt, (**failure).clone()));
            }
            i.state.is_terminal()
        }),
    )
    .await;
    (info, failures.into_iter().map(|(_, f)| f).collect())
}

fn is_request_timeout(error: &CallError) -> bool {
    matches!(
        error,
        CallError::Timeout {
            kind: TimeoutKind::Request,
            ..
        }
    )
}

/// 1. A 503 burst: the caller retries with the same request id after the policy's delays, shows
///    the attempts and the last failure while backing off, and succeeds after the burst.
#[tokio::test]
async fn a_503_burst_is_retried_with_the_same_request_id() {
    let handler = Handler::new();
    handler.burst(3);
    let wire = WireLog::default();
    let (_dispatcher, server) = serve_handler(&handler, &wire).await;
    // 10, 40, 160 ms; the breaker (5 failures) stays closed.
    let retry = RetryPolicy::default()
        .initial_interval(millis(10))
        .backoff_coefficient(4.0)
        .jitter(0.0);
    let caller = caller(endpoint(&server).retry(retry.clone())).await;
    let handle = caller.stub.flaky("burst".into()).schedule().unwrap();

    let info = within(
        "backing off after the second attempt",
        handle.wait_for(|i| i.state == OperationState::BackingOff && i.attempt >= 2),
    )
    .await;
    assert_unavailable(info.last_failure.as_deref());
    let failed = &wire.exchanges()[info.attempt as usize - 1];
    assert_eq!(failed.status, Some(503));
    let answered = failed.answered.unwrap();
    let delay = retry.delay(info.attempt, 0.0);
    let next = info
        .next_attempt_at
        .expect("the next attempt time is shown");
    assert!(
        next >= answered + delay && next <= answered + delay + millis(150),
        "the next attempt is due {delay:?} after the failure, not {} ms",
        ms(answered, next)
    );

    assert_eq!(
        within("the result", handle.result()).await.unwrap(),
        "burst"
    );
    let info = handle.info();
    assert_eq!(info.state, OperationState::Succeeded);
    assert_eq!(info.attempt, 4);
    assert!(info.last_failure.is_none());

    // On the wire: three 503s and a 200, every attempt with the same request id and a
    // Request-Timeout, each after the policy's delay.
    let exchanges = wire.exchanges();
    assert_eq!(wire.statuses(|_| true), [503, 503, 503, 200]);
    for e in &exchanges {
        assert_eq!(e.request_id.as_deref(), Some(handle.request_id()));
        assert!(e.request_timeout.is_some());
    }
    for (n, pair) in (1..).zip(exchanges.windows(2)) {
        let gap = pair[1]
            .received
            .saturating_duration_since(pair[0].answered.unwrap());
        assert!(gap >= retry.delay(n, 0.0), "retry {n} came after {gap:?}");
    }
    let starts = handler.starts();
    assert_eq!(starts.len(), 4);
    assert!(starts.iter().all(|s| s.request_id == handle.request_id()));
}

/// 1. A burst of five 503s opens the breaker: the operation shows as blocked until the breaker
///    turns half-open, which lets one probe through; its success closes the breaker and the
///    operation completes. A second operation scheduled meanwhile waits for the probe's answer.
#[tokio::test]
async fn five_503s_open_the_breaker_and_one_half_open_probe_closes_it() {
    let handler = Handler::new();
    handler.burst(5);
    handler.success_delay(millis(50));
    let wire = WireLog::default();
    let (_dispatcher, server) = serve_handler(&handler, &wire).await;
    let open_for = millis(200);
    let caller = caller(
        endpoint(&server)
            .retry(every(10))
            .breaker(BreakerConfig::default().open_duration(open_for)),
    )
    .await;
    let first = caller.stub.flaky("first".into()).schedule().unwrap();

    let info = within(
        "the breaker to block the operation",
        first.wait_for(|i| i.state == OperationState::Blocked),
    )
    .await;
    assert_eq!(info.state, OperationState::Blocked);
    assert_eq!(info.blocked_reason.as_deref(), Some(BREAKER_OPEN_REASON));
    assert_eq!(info.attempt, 5);
    assert_unavailable(info.last_failure.as_deref());
    let Some(BreakerState::Open { until }) = caller.client.breaker_state("faults") else {
        panic!(
            "the breaker is open: {:?}",
            caller.client.breaker_state("faults")
        );
    };
    assert_eq!(info.next_attempt_at, Some(until));
    let fifth = wire.exchanges()[4].answered.unwrap();
    assert!(until >= fifth + open_for && until <= fifth + open_for + millis(150));

    let second = caller.stub.flaky("second".into()).schedule().unwrap();
    let info = within(
        "the second operation to be blocked",
        second.wait_for(|i| i.state == OperationState::Blocked),
    )
    .await;
    assert_eq!(
        info.attempt, 0,
        "nothing was sent while the breaker is open"
    );
    assert_eq!(info.next_attempt_at, Some(until));

    let (a, b) = within("both results", async {
        tokio::join!(first.result(), second.result())
    })
    .await;
    assert_eq!((a.unwrap(), b.unwrap()), ("first".into(), "second".into()));
    assert_eq!(first.info().attempt, 6);
    assert_eq!(second.info().attempt, 1);
    assert_eq!(
        caller.client.breaker_state("faults"),
        Some(BreakerState::Closed {
            consecutive_failures: 0
        })
    );
    assert_eq!(wire.statuses(|_| true), [503, 503, 503, 503, 503, 200, 200]);
    let starts = handler.starts();
    let (probe, after) = (&starts[5], &starts[6]);
    assert!(
        probe.at >= until,
        "the probe went out once the breaker turned half-open"
    );
    assert!(
        after.at >= probe.answered.unwrap(),
        "half-open admits one probe: the other operation waited for its answer"
    );
}

/// 2. A handler that resets (RST) or closes (FIN) connections before answering: each attempt is a
///    retryable Connect failure, retried until the server serves again on the same port.
#[tokio::test]
async fn reset_and_closed_connections_are_retried_until_the_server_recovers() {
    let handler = Handler::new();
    let (listener, faults) = FaultyListener::bind().await;
    faults.script([Fault::Reset, Fault::Close, Fault::Reset]);
    let server = spawn(listener, HandlerServer::new(handler.dispatcher()).router());
    let caller = caller(endpoint(&server).retry(every(20))).await;
    let handle = caller.stub.flaky("after resets".into()).schedule().unwrap();

    let (info, failures) = run_to_end(&handle).await;
    assert_eq!(info.state, OperationState::Succeeded);
    assert_eq!(handle.result().await.unwrap(), "after resets");
    assert_eq!(info.attempt, 4);
    assert_eq!((faults.faulted(), faults.accepted()), (3, 4));
    // Each backoff showed its failure (the test's runtime is single-threaded: the watcher runs
    // before the driver's backoff timer can fire).
    assert_eq!(failures.len(), 3, "{failures:#?}");
    for (failure, fault) in failures.iter().zip([
        "reset by peer",
        "closed before message completed",
        "reset by peer",
    ]) {
        assert_connect_failure(Some(failure), &server.addr.to_string());
        assert!(failure.to_string().contains(fault), "{fault}: {failure}");
    }
    let starts = handler.starts();
    assert_eq!(
        starts.len(),
        1,
        "only the served attempt reached the handler"
    );
    assert_eq!(starts[0].request_id, handle.request_id());
}

/// 2. Nothing listens on the port (connection refused): retried as a Connect failure until a
///    handler server binds the port.
#[tokio::test]
async fn a_refused_connection_is_retried_until_a_server_listens() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let transport = HttpTransport::new(format!("http://{addr}")).unwrap();
    let caller = caller(EndpointConfig::new(transport).retry(every(20))).await;
    let handle = caller.stub.flaky("refused".into()).schedule().unwrap();

    let info = within(
        "a second refused attempt",
        handle.wait_for(|i| i.state == OperationState::BackingOff && i.attempt >= 2),
    )
    .await;
    assert_connect_failure(info.last_failure.as_deref(), &addr.to_string());
    let message = info.last_failure.unwrap().to_string().to_lowercase();
    assert!(message.contains("refused"), "{message}");

    let handler = Handler::new();
    let _server = HandlerServer::new(handler.dispatcher())
        .bind(addr)
        .await
        .unwrap();
    assert_eq!(
        within("the result", handle.result()).await.unwrap(),
        "refused"
    );
    assert!(handle.info().attempt >= 3);
    assert_eq!(handler.starts().len(), 1);
}

/// 3. A peer that accepts and never answers: the client enforces each attempt's request timeout
///    (sent as `Request-Timeout`, capped by what is left of schedule-to-close), retries, and
///    schedule-to-close ends the operation naming the last attempt's request timeout.
#[tokio::test]
async fn a_silent_peer_times_out_every_attempt_until_schedule_to_close() {
    let silent = Silent::bind().await;
    let transport = HttpTransport::new(silent.url()).unwrap();
    let caller = caller(
        EndpointConfig::new(transport)
            .retry(every(20))
            .breaker(BreakerConfig::disabled())
            .request_timeout(millis(300)),
    )
    .await;
    let scheduled = Instant::now();
    // Attempts at about 0, 320 and 640 ms; the third is cut short at 800 ms.
    let result = within(
        "schedule-to-close",
        caller
            .stub
            .flaky("silence".into())
            .schedule_to_close_timeout(millis(800)),
    )
    .await;
    let elapsed = ms(scheduled, Instant::now());
    match &result {
        Err(CallError::Timeout {
            kind: TimeoutKind::ScheduleToClose,
            last_failure: Some(last),
        }) => assert!(is_request_timeout(last), "last failure: {last:?}"),
        other => panic!("expected a schedule-to-close timeout, got {other:?}"),
    }
    assert!((800..1100).contains(&elapsed), "ended after {elapsed} ms");

    let heads = silent.heads();
    assert_eq!(heads.len(), 3, "{heads:#?}");
    let timeouts: Vec<Duration> = heads
        .iter()
        .map(|(_, head)| {
            let value = head_header(head, "request-timeout").expect("Request-Timeout was sent");
            nexus_runtime::protocol::parse_duration(&value).unwrap()
        })
        .collect();
    for t in &timeouts[..2] {
        assert!(*t > millis(250) && *t <= millis(300), "{timeouts:?}");
    }
    assert!(
        timeouts[2] < millis(250),
        "the last attempt only gets what is left of schedule-to-close: {timeouts:?}"
    );
    // The client gave up on each attempt (closing its connection) at its own deadline.
    within("the client to close every connection", async {
        while silent.closed().len() < 3 {
            tokio::time::sleep(millis(5)).await;
        }
    })
    .await;
    let closed = silent.closed();
    let first_attempt = ms(heads[0].0, closed[0]);
    assert!(
        (250..450).contains(&first_attempt),
        "the first attempt was abandoned after {first_attempt} ms"
    );
}

/// 3. A handler that never answers is dropped by the handler server at the request deadline, which
///    answers UPSTREAM_TIMEOUT (retried); and when the client's attempt timeout is the deadline,
///    the client gives up and the handler's future is dropped too.
#[tokio::test]
async fn the_handler_server_drops_a_hanging_handler_at_its_deadline() {
    let handler = Handler::new();
    let wire = WireLog::default();
    let (_dispatcher, server) = serve_handler(&handler, &wire).await;
    let caller = caller(
        endpoint(&server)
            .retry(every(20).maximum_attempts(2))
            .breaker(BreakerConfig::disabled())
            .request_timeout(Duration::from_secs(3)),
    )
    .await;

    // An explicit Request-Timeout shorter than the client's own attempt timeout: the handler
    // server's deadline comes first.
    let started = Instant::now();
    let error = within(
        "two UPSTREAM_TIMEOUTs",
        caller
            .stub
            .hang("short deadline".into())
            .header("Request-Timeout", "100ms"),
    )
    .await
    .unwrap_err();
    let elapsed = ms(started, Instant::now());
    let upstream = error.as_handler_error().expect("a handler error");
    assert_eq!(upstream.error_type, HandlerErrorType::UpstreamTimeout);
    assert!(
        upstream.message.contains("before the request deadline"),
        "{upstream}"
    );
    assert!(elapsed < 1000, "well before the client's 3 s: {elapsed} ms");
    assert_eq!(wire.statuses(|_| true), [520, 520]);
    handler
        .wait_until("two dropped handlers", |h| h.dropped().len() == 2)
        .await;
    for dropped in handler.dropped() {
        let lived = ms(dropped.started, dropped.dropped);
        assert!((95..500).contains(&lived), "dropped after {lived} ms");
    }
    for start in handler.starts() {
        let deadline = start.deadline.expect("the handler had a deadline");
        assert!(
            deadline <= millis(100) && deadline > millis(50),
            "{deadline:?}"
        );
    }

    // The client's attempt timeout is the deadline sent: whichever side's timer fires first (the
    // header carries whole milliseconds, so the handler server's may be up to 1 ms earlier), the
    // attempt ends at the deadline and the handler's future does not outlive it.
    let error = within(
        "the request timeout",
        caller
            .stub
            .hang("client deadline".into())
            .request_timeout(millis(200))
            .retry_policy(RetryPolicy::no_retries()),
    )
    .await
    .unwrap_err();
    let upstream_timeout = error
        .as_handler_error()
        .is_some_and(|e| e.error_type == HandlerErrorType::UpstreamTimeout);
    assert!(is_request_timeout(&error) || upstream_timeout, "{error:?}");
    handler
        .wait_until("the third handler dropped", |h| h.dropped().len() == 3)
        .await;
    let dropped = handler.dropped()[2];
    let lived = ms(dropped.started, dropped.dropped);
    assert!((150..500).contains(&lived), "dropped after {lived} ms");
}

type Handle = OperationHandle<support::faults::faulty::Wait>;

async fn start_wait(caller: &Caller, input: &str, cancellation: CancellationType) -> Handle {
    within(
        "the async start",
        caller
            .stub
            .wait(input.into())
            .cancellation_type(cancellation)
            .start(),
    )
    .await
    .unwrap()
}

fn cancel_state(handle: &Handle) -> CancelState {
    handle
        .info()
        .cancellation
        .expect("cancellation asked")
        .state
}

/// 4. Each cancellation type over HTTP: what the caller gets, and what the handler saw. The
///    handler takes 100 ms to wind a canceled operation down, so its 202 reaches the caller well
///    before its canceled completion (the reverse order is the next test).
#[tokio::test]
async fn each_cancellation_type_over_http() {
    let handler = Handler::new();
    handler.cancel_cleanup(millis(100));
    let wire = WireLog::default();
    let (dispatcher, server) = serve_handler(&handler, &wire).await;
    let caller = caller(endpoint(&server).retry(every(20))).await;
    let cancels_for =
        |token: &str| wire.statuses(|e| e.is_cancel() && e.token.as_deref() == Some(token));
    let saw_cancel =
        |input: &'static str| move |h: &Handler| h.cancels_seen().iter().any(|c| c == input);

    // Abandon: no request; the caller stops waiting at once.
    let abandoned = start_wait(&caller, "abandon", CancellationType::Abandon).await;
    let abandoned_token = abandoned.token().unwrap().to_owned();
    within("abandon", abandoned.cancel()).await.unwrap();
    assert_eq!(abandoned.result().await, Err(CallError::Canceled));
    assert_eq!(cancel_state(&abandoned), CancelState::NotSent);

    // TryCancel: the caller stops waiting at once; the request goes out in the background.
    let tried = start_wait(&caller, "try-cancel", CancellationType::TryCancel).await;
    within("try-cancel", tried.cancel()).await.unwrap();
    assert_eq!(tried.result().await, Err(CallError::Canceled));
    handler
        .wait_until("the try-cancel request", saw_cancel("try-cancel"))
        .await;
    within(
        "the try-cancel acknowledgement",
        tried.wait_for(support::cancel_is(CancelState::Succeeded)),
    )
    .await;
    assert_eq!(cancels_for(tried.token().unwrap()), [202]);

    // WaitRequested: cancel() returns once the handler answered 202.
    let requested = start_wait(&caller, "wait-requested", CancellationType::WaitRequested).await;
    within("wait-requested", requested.cancel()).await.unwrap();
    assert_eq!(cancels_for(requested.token().unwrap()), [202]);
    assert_eq!(cancel_state(&requested), CancelState::Succeeded);
    assert_eq!(requested.result().await, Err(CallError::Canceled));
    handler
        .wait_until("the wait-requested request", saw_cancel("wait-requested"))
        .await;

    // WaitCompleted: cancel() returns at the 202; the result is the handler's canceled completion,
    // delivered to the callback receiver.
    let completed = start_wait(&caller, "wait-completed", CancellationType::WaitCompleted).await;
    let token = completed.token().unwrap().to_owned();
    within("wait-completed", completed.cancel()).await.unwrap();
    assert_eq!(cancels_for(&token), [202]);
    let error = within("the canceled completion", completed.result())
        .await
        .unwrap_err();
    let canceled = error.as_operation_error().expect("an operation error");
    assert!(canceled.is_canceled());
    assert_eq!(
        canceled.message,
        "`wait-completed` canceled as the caller asked"
    );
    assert_eq!(completed.info().state, OperationState::Canceled);
    assert_eq!(
        caller
            .receiver_wire
            .statuses(|e| e.token.as_deref() == Some(&token)),
        [200]
    );

    // Back to the abandoned operation: no cancel request ever went out for it, its handler never
    // saw one and it kept running; released, its completion is refused (nobody waits for it).
    assert!(cancels_for(&abandoned_token).is_empty());
    assert!(!saw_cancel("abandon")(&handler));
    assert_eq!(dispatcher.running_operations(), 1);
    handler.release("abandon");
    caller
        .receiver_wire
        .wait_until(
            "the abandoned operation's completion",
            |x: &[Exchange]| {
                x.iter()
                    .any(|e| e.token.as_deref() == Some(&abandoned_token) && e.status.is_some())
            },
        )
        .await;
    assert_eq!(
        caller
            .receiver_wire
            .statuses(|e| e.token.as_deref() == Some(&abandoned_token)),
        [404]
    );
    assert_eq!(caller.client.pending_operations(), 0);
}

/// 4. WaitRequested when the handler's canceled completion overtakes its 202 (the 202 is held
///    back): the completion is the outcome, and `cancel()` returns with it.
#[tokio::test]
async fn a_completion_that_overtakes_the_cancel_acknowledgement_is_the_outcome() {
    let handler = Handler::new();
    let wire = WireLog::default();
    wire.delay_cancel_answers(millis(300));
    let (_dispatcher, server) = serve_handler(&handler, &wire).await;
    let caller = caller(endpoint(&server).retry(every(20))).await;
    let handle = start_wait(&caller, "overtaken", CancellationType::WaitRequested).await;
    let token = handle.token().unwrap().to_owned();

    within("cancel()", handle.cancel()).await.unwrap();
    assert_eq!(
        wire.statuses(|e| e.is_cancel()),
        [0],
        "cancel() returned before the 202"
    );
    let error = handle.result().await.unwrap_err();
    let canceled = error.as_operation_error().expect("the completion's error");
    assert!(canceled.is_canceled());
    assert_eq!(handle.state(), OperationState::Canceled);
    assert_eq!(
        caller
            .receiver_wire
            .statuses(|e| e.token.as_deref() == Some(&token)),
        [200]
    );
    assert_eq!(handler.cancels_seen(), ["overtaken"]);
}

/// 4. A cancel request that meets 503s is retried (showing its attempts and last failure) until
///    the handler accepts it.
#[tokio::test]
async fn a_cancel_request_that_meets_503s_is_retried_until_accepted() {
    let handler = Handler::new();
    let wire = WireLog::default();
    wire.fail_cancels(2);
    let (_dispatcher, server) = serve_handler(&handler, &wire).await;
    let caller = caller(endpoint(&server).retry(every(30))).await;
    let handle = start_wait(&caller, "retried", CancellationType::WaitRequested).await;
    let token = handle.token().unwrap().to_owned();

    let canceling = tokio::spawn({
        let handle = handle.clone();
        async move { handle.cancel().await }
    });
    let info = within(
        "the cancel request to back off",
        handle.wait_for(support::cancel_is(CancelState::BackingOff)),
    )
    .await;
    assert_eq!(
        info.state,
        OperationState::Started,
        "still running meanwhile"
    );
    let cancellation = info.cancellation.unwrap();
    assert!(cancellation.attempt >= 1);
    assert_unavailable(cancellation.last_failure.as_ref());
    assert!(cancellation.next_attempt_at.is_some());

    within("the acknowledged cancel", canceling)
        .await
        .unwrap()
        .unwrap();
    let cancellation = handle.info().cancellation.unwrap();
    assert_eq!(cancellation.state, CancelState::Succeeded);
    assert_eq!(cancellation.attempt, 3);
    assert_eq!(
        wire.statuses(|e| e.is_cancel() && e.token.as_deref() == Some(&token)),
        [503, 503, 202]
    );
    assert_eq!(handle.result().await, Err(CallError::Canceled));
    handler
        .wait_until("the cancellation", |h| h.cancels_seen() == ["retried"])
        .await;
}

/// 5. Two targets, one resetting every connection: round robin sends every other attempt to it
///    until its breaker opens; then every attempt goes to the healthy target.
#[tokio::test]
async fn traffic_goes_to_the_healthy_target_once_the_broken_ones_breaker_opens() {
    let (listener, faults) = FaultyListener::bind().await;
    faults.forever(Fault::Reset);
    let broken = spawn(listener, axum::Router::new());
    let handler = Handler::new();
    let wire = WireLog::default();
    let (_dispatcher, healthy) = serve_handler(&handler, &wire).await;
    let targets: Vec<Arc<dyn Transport>> = vec![
        Arc::new(HttpTransport::new(broken.url()).unwrap()),
        Arc::new(HttpTransport::new(healthy.url()).unwrap()),
    ];
    let caller = caller(
        EndpointConfig::with_targets(targets)
            .retry(every(10))
            .breaker(
                BreakerConfig::default()
                    .failure_threshold(3)
                    .open_duration(Duration::from_secs(30)),
            ),
    )
    .await;

    for n in 0..3 {
        let handle = caller.stub.flaky(format!("rr-{n}")).schedule().unwrap();
        let (info, failures) = run_to_end(&handle).await;
        assert_eq!(handle.result().await.unwrap(), format!("rr-{n}"));
        assert_eq!(
            (info.attempt, info.target),
            (2, Some(1)),
            "the broken target first, then the healthy one"
        );
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_connect_failure(failures.first(), &broken.addr.to_string());
    }
    assert_eq!(faults.accepted(), 3);
    let states = caller.client.breaker_states("faults");
    assert!(states[0].is_open(), "{states:?}");
    assert_eq!(
        states[1],
        BreakerState::Closed {
            consecutive_failures: 0
        }
    );

    let handles: Vec<_> = (0..6)
        .map(|n| caller.stub.flaky(format!("after-{n}")).schedule().unwrap())
        .collect();
    for handle in &handles {
        within("a result", handle.result()).await.unwrap();
        let info = handle.info();
        assert_eq!((info.attempt, info.target), (1, Some(1)));
    }
    assert_eq!(
        faults.accepted(),
        3,
        "nothing more went to the broken target"
    );
    assert_eq!(handler.starts().len(), 9);
    assert_eq!(wire.statuses(|_| true), [200; 9]);
}

/// Records what became of each completion the handler server sent.
#[derive(Clone)]
struct RecordingSender {
    inner: HttpCompletionSender,
    reports: Arc<Mutex<Vec<DeliveryReport>>>,
}

impl CompletionSender for RecordingSender {
    fn send(
        &self,
        url: String,
        headers: std::collections::BTreeMap<String, String>,
        completion: Completion,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let this = self.clone();
        async move {
            let report = this.inner.deliver(&url, &headers, &completion).await;
            this.reports.lock().unwrap().push(report.clone());
            report.result
        }
        .boxed()
    }
}

/// 6. The caller's callback receiver is down when the handler completes: the handler's completion
///    sender retries (refused connections, then two 503s) until the receiver is back on the same
///    port, and the caller's handle resolves.
#[tokio::test]
async fn a_completion_waits_for_the_callback_receiver_to_come_back() {
    let handler = Handler::new();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sender = RecordingSender {
        inner: HttpCompletionSender::new()
            .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
            .retry(CompletionRetry {
                initial_interval: millis(20),
                multiplier: 1.0,
                max_interval: millis(20),
                max_attempts: 100,
            })
            .attempt_timeout(millis(500)),
        reports: reports.clone(),
    };
    let dispatcher = handler.dispatcher();
    let router = HandlerServer::builder(dispatcher.clone())
        .completion_sender(sender)
        .build()
        .router();
    let server = spawn(TcpListener::bind("127.0.0.1:0").await.unwrap(), router);

    let callbacks = CallbackListener::bind_loopback().await.unwrap();
    let receiver_addr = callbacks.local_addr();
    let client = Client::builder()
        .endpoint("faults", endpoint(&server).retry(every(20)))
        .callback_url(callbacks.callback_url())
        .jitter(Jitter::seeded(7))
        .build();
    let receiver = callbacks.serve(client.clone()).unwrap();
    let stub = FaultyClient::new(client.clone(), "faults");
    let handle = within("the async start", stub.wait("late".into()).start())
        .await
        .unwrap();

    // The receiver goes down, then the handler completes.
    receiver.shutdown().await.unwrap();
    handler.release("late");
    within("the handler's work to end", async {
        while dispatcher.running_operations() > 0 {
            tokio::time::sleep(millis(2)).await;
        }
    })
    .await;
    tokio::time::sleep(millis(150)).await;
    assert_eq!(handle.state(), OperationState::Started, "still waiting");
    assert!(reports.lock().unwrap().is_empty(), "still delivering");

    // The receiver comes back on the same port, overloaded at first (two 503s).
    let wire = WireLog::default();
    wire.fail_any(2);
    let listener = TcpListener::bind(receiver_addr).await.unwrap();
    let _receiver = spawn(
        listener,
        wire.wrap(CallbackReceiver::new(client.clone()).router()),
    );
    assert_eq!(within("the result", handle.result()).await.unwrap(), "late");
    within("the delivery report", async {
        while reports.lock().unwrap().is_empty() {
            tokio::time::sleep(millis(2)).await;
        }
    })
    .await;
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report.result, Ok(()));
    assert!(
        report.attempts >= 6,
        "refused attempts while down (150 ms at 20 ms intervals), two 503s, then delivered: {}",
        report.attempts
    );
    assert_eq!(wire.statuses(|_| true), [503, 503, 200]);
    assert_eq!(client.pending_operations(), 0);
}
