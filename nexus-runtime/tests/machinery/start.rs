//! What `start()` and `wait_started()` return: the handle of an operation that started, even when
//! its completion came before the handle looked; the error of one that ended without starting.

use crate::support;

use nexus_runtime::Client;
use nexus_runtime::client::{EndpointConfig, OperationState};
use nexus_runtime::error::{CallError, HandlerError, OperationError};
use nexus_runtime::machinery::{BreakerConfig, RetryPolicy};
use support::scripted::{Answer, EchoClient, Scripted, settle};

fn setup() -> (Scripted, EchoClient) {
    let transport = Scripted::new("t");
    let client = Client::builder()
        .endpoint(
            "echo",
            EndpointConfig::new(transport.clone())
                .retry(RetryPolicy::default().jitter(0.0))
                .breaker(BreakerConfig::disabled()),
        )
        .build();
    (transport.clone(), EchoClient::new(client, "echo"))
}

#[tokio::test(start_paused = true)]
async fn an_operation_that_started_and_already_failed_has_started() {
    let (transport, echo) = setup();
    transport.starts([Answer::Async("t1".into())]);
    let handle = echo.echo("x".into()).schedule().expect("scheduled");
    settle().await;
    // The completion arrives before anyone asked whether the operation started.
    let failed = OperationError::failed("workflow failed on purpose");
    transport.complete("t1", Err(failed.clone())).await;
    settle().await;
    assert_eq!(handle.state(), OperationState::Failed);
    handle
        .wait_started()
        .await
        .expect("it started: the failure is the result's, not the start's");
    assert_eq!(handle.token(), Some("t1"));
    assert_eq!(handle.result().await, Err(CallError::Operation(failed)));
}

#[tokio::test(start_paused = true)]
async fn an_operation_that_ended_without_starting_fails_its_start() {
    let (transport, echo) = setup();
    let refused = HandlerError::bad_request("no such transaction");
    transport.starts([Answer::Fail(CallError::Handler(refused.clone()))]);
    let error = echo
        .echo("x".into())
        .start()
        .await
        .expect_err("refused before it started");
    assert_eq!(error, CallError::Handler(refused));
}
