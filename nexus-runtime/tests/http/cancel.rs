//! Cancel requests over HTTP: the three forms of the token, a handle's cancel through the client,
//! and the errors (sdk-go `cancel_test.go`).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_runtime::CallError;
use nexus_runtime::error::{HandlerErrorType, OperationErrorState};
use nexus_runtime::server::CallbackListener;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::{CancelRequest, HttpTransport, Transport};
use support::probe::{Probe, failure, recorder, serve_probe};
use support::raw_client;

async fn wait_idle(dispatcher: &Dispatcher) {
    for _ in 0..500 {
        if dispatcher.running_operations() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the operation did not finish after its cancel");
}

/// TestCancel_HandleFromClient with the token `a/sync`, in each of the three forms: the
/// `Nexus-Operation-Token` header, the `token` query parameter, and the deprecated path.
#[tokio::test]
async fn the_three_cancel_forms() {
    let probe = Probe::new("svc");
    let (dispatcher, server) = serve_probe(&probe, "/").await;
    let mut callback = recorder(vec![]).await;
    let http = raw_client();
    let start_url = format!(
        "{}/svc/async-token?callback={}",
        server.url(),
        form_urlencoded::byte_serialize(format!("{}/cb", callback.url).as_bytes())
            .collect::<String>()
    );
    let start = || http.post(&start_url).send();
    let cancels = [
        http.post(format!("{}/svc/async-token/cancel", server.url()))
            .header("nexus-operation-token", "a/sync")
            .header("x-reason", "form 1"),
        http.post(format!(
            "{}/svc/async-token/cancel?token=a%2Fsync",
            server.url()
        )),
        http.post(format!("{}/svc/async-token/a%2Fsync/cancel", server.url())),
    ];
    for cancel in cancels {
        assert_eq!(start().await.unwrap().status(), 201);
        assert_eq!(dispatcher.running_operations(), 1);
        let response = cancel.send().await.unwrap();
        assert_eq!(response.status(), 202);
        assert!(response.bytes().await.unwrap().is_empty());
        let completion = callback.next().await;
        assert_eq!(completion.headers["nexus-operation-state"], "canceled");
        assert_eq!(completion.headers["nexus-operation-token"], "a/sync");
        let f = failure(&completion.body);
        assert_eq!(f.message, "canceled as asked");
        wait_idle(&dispatcher).await;
    }
}

/// A missing token is BAD_REQUEST; an unknown token, or one of another operation, NOT_FOUND.
#[tokio::test]
async fn cancel_errors_name_the_problem() {
    let probe = Probe::new("svc");
    let (_dispatcher, server) = serve_probe(&probe, "/").await;
    let http = raw_client();
    let response = http
        .post(format!("{}/svc/hang-async/cancel", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let f = failure(&response.bytes().await.unwrap());
    assert!(
        f.message.contains("missing operation token"),
        "{}",
        f.message
    );

    // cancel_test.go's timeout cases: a malformed Request-Timeout is BAD_REQUEST, a valid one
    // is accepted.
    let response = http
        .post(format!("{}/svc/hang-async/cancel", server.url()))
        .header("nexus-operation-token", "nope")
        .header("request-timeout", "2 seconds")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let f = failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("request-timeout"), "{}", f.message);

    let response = http
        .post(format!("{}/svc/hang-async/cancel", server.url()))
        .header("nexus-operation-token", "nope")
        .header("request-timeout", "2s")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        failure(&response.bytes().await.unwrap())
            .message
            .contains("nope")
    );

    assert_eq!(
        http.post(format!("{}/svc/async-token", server.url()))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let response = http
        .post(format!("{}/svc/hang-async/cancel", server.url()))
        .header("nexus-operation-token", "a/sync")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let f = failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("belongs to operation"), "{}", f.message);
}

/// The transport's cancel, and TestCancel_HandleFromStart: a handle's cancel through the client,
/// whose result then arrives as canceled by callback.
#[tokio::test]
async fn cancel_through_the_transport_and_a_handle() {
    let probe = Probe::new("svc");
    let (dispatcher, server) = serve_probe(&probe, "/nexus").await;
    let transport = HttpTransport::new(format!("{}/nexus", server.url())).unwrap();
    assert_eq!(
        raw_client()
            .post(format!("{}/nexus/svc/async-token", server.url()))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let cancel = CancelRequest {
        service: "svc".into(),
        operation: "async-token".into(),
        token: "a/sync".into(),
        headers: BTreeMap::new(),
        request_deadline: None,
    };
    transport.cancel(cancel.clone()).await.unwrap();
    wait_idle(&dispatcher).await;
    let err = transport.cancel(cancel).await.unwrap_err();
    assert_eq!(
        err.as_handler_error().map(|e| &e.error_type),
        Some(&HandlerErrorType::NotFound)
    );

    // Through a client and a handle.
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let client = nexus_runtime::Client::builder()
        .endpoint("probe", transport)
        .callback_url(listener.callback_url())
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let handle = HangClient::new(client.clone(), "probe")
        .hang(serde_json::json!(null))
        .start()
        .await
        .unwrap();
    assert!(handle.token().is_some());
    handle.cancel().await.unwrap();
    match handle.result().await {
        Err(CallError::Operation(e)) => {
            assert_eq!(e.state, OperationErrorState::Canceled);
            assert_eq!(e.message, "canceled as asked");
        }
        other => panic!("expected a canceled operation, got {other:?}"),
    }
}

/// The probe's `hang-async` operation as a typed contract.
#[nexus_runtime::nexus_service(name = "svc")]
pub trait Hang {
    /// Runs until canceled.
    #[operation(name = "hang-async")]
    async fn hang(
        &self,
        ctx: nexus_runtime::OperationContext,
        input: serde_json::Value,
    ) -> nexus_runtime::OperationResult<serde_json::Value>;
}
