//! Completion callbacks over HTTP: what the completion sender sends, how it retries, and what the
//! callback receiver accepts (sdk-go `completion_test.go`).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use nexus_runtime::codec::Content;
use nexus_runtime::completion::{Completion, CompletionSender};
use nexus_runtime::error::{HandlerErrorType, OPERATION_ERROR_TYPE};
use nexus_runtime::protocol::{FailureFormat, parse_completion};
use nexus_runtime::server::{CompletionRetry, HttpCompletionSender};
use nexus_runtime::{Link, OperationError};
use support::probe::{failure, recorder};
use support::raw_client;

fn quick_retry(max_attempts: u32) -> CompletionRetry {
    CompletionRetry {
        initial_interval: Duration::from_millis(5),
        multiplier: 2.0,
        max_interval: Duration::from_millis(20),
        max_attempts,
    }
}

fn completion(outcome: Result<Content, OperationError>) -> Completion {
    Completion {
        token: "tok-1".into(),
        outcome,
        links: vec![Link::new(
            "temporal:///namespaces/default/workflows/wf/run/history?eventID=1&eventType=WorkflowExecutionStarted",
            "temporal.api.common.v1.Link.WorkflowEvent",
        )],
        start_time: Some(UNIX_EPOCH + Duration::from_secs(1_795_438_913)),
        close_time: Some(UNIX_EPOCH + Duration::new(1_795_438_914, 355_519_283)),
    }
}

/// TestSuccessfulCompletion: path and query kept, callback headers, token, links, start and
/// close times, the result with its content headers.
#[tokio::test]
async fn successful_completion() {
    let mut peer = recorder(vec![]).await;
    let sender = HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback());
    let url = format!("{}/callback/xyz?a=1&b=two%20words", peer.url);
    let headers = BTreeMap::from([
        ("my-token".to_owned(), "secret123".to_owned()),
        ("temporal-callback-token".to_owned(), "{\"v\":1}".to_owned()),
    ]);
    let sent = completion(Ok(Content::new("application/json", r#"{"echoed":true}"#)));
    let report = sender.deliver(&url, &headers, &sent).await;
    assert_eq!(report.attempts, 1);
    assert_eq!(report.result, Ok(()));
    let got = peer.next().await;
    assert_eq!(got.uri, "/callback/xyz?a=1&b=two%20words");
    let h = &got.headers;
    assert_eq!(h["my-token"], "secret123");
    assert_eq!(h["temporal-callback-token"], "{\"v\":1}");
    assert_eq!(h["nexus-operation-state"], "succeeded");
    assert_eq!(h["nexus-operation-token"], "tok-1");
    assert_eq!(
        h["nexus-operation-start-time"],
        "Mon, 23 Nov 2026 13:01:53 GMT"
    );
    assert_eq!(
        h["nexus-operation-close-time"],
        "2026-11-23T13:01:54.355519283Z"
    );
    assert_eq!(
        h["nexus-link"],
        "<temporal:///namespaces/default/workflows/wf/run/history?eventID=1&eventType=WorkflowExecutionStarted>; type=\"temporal.api.common.v1.Link.WorkflowEvent\""
    );
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["content-length"], "15");
    assert_eq!(&got.body[..], br#"{"echoed":true}"#);
    // What a receiver reads back is what was sent.
    assert_eq!(parse_completion(h, got.body).unwrap(), sent);
}

/// TestSuccessfulCompletion_CustomSerializer: raw bytes keep their content type and bytes; and
/// an empty result has no content type.
#[tokio::test]
async fn bytes_and_empty_results() {
    let mut peer = recorder(vec![]).await;
    let sender = HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback());
    let bytes = completion(Ok(Content::new(
        "application/octet-stream",
        vec![0u8, 159, 146, 150],
    )));
    sender
        .deliver(&peer.url, &BTreeMap::new(), &bytes)
        .await
        .result
        .unwrap();
    let got = peer.next().await;
    assert_eq!(got.headers["content-type"], "application/octet-stream");
    assert_eq!(&got.body[..], &[0u8, 159, 146, 150]);
    let empty = completion(Ok(Content::empty()));
    sender
        .deliver(&peer.url, &BTreeMap::new(), &empty)
        .await
        .result
        .unwrap();
    let got = peer.next().await;
    assert!(got.headers.get("content-type").is_none());
    assert!(got.body.is_empty());
}

/// TestFailureCompletion (canceled, message preserved) and the custom failure converter case
/// (details and cause survive), in both failure formats.
#[tokio::test]
async fn failure_completions() {
    let mut peer = recorder(vec![]).await;
    let canceled = completion(Err(OperationError::canceled("expected message")));
    HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .deliver(&peer.url, &BTreeMap::new(), &canceled)
        .await
        .result
        .unwrap();
    let got = peer.next().await;
    assert_eq!(got.headers["nexus-operation-state"], "canceled");
    assert_eq!(got.headers["content-type"], "application/json");
    let f = failure(&got.body);
    assert_eq!(f.failure_type(), Some(OPERATION_ERROR_TYPE));
    assert_eq!(f.message, "expected message");
    assert_eq!(parse_completion(&got.headers, got.body).unwrap(), canceled);

    let failed = completion(Err(
        OperationError::failed("card declined").with_details(&serde_json::json!({"code": 51}))
    ));
    for format in [FailureFormat::Envelope, FailureFormat::CauseIfPresent] {
        HttpCompletionSender::new()
            .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
            .failure_format(format)
            .deliver(&peer.url, &BTreeMap::new(), &failed)
            .await
            .result
            .unwrap();
        let got = peer.next().await;
        assert_eq!(got.headers["nexus-operation-state"], "failed");
        let back = parse_completion(&got.headers, got.body).unwrap();
        let err = back.outcome.unwrap_err();
        assert_eq!(err.message, "card declined", "{format:?}");
        assert_eq!(
            err.details::<serde_json::Value>().unwrap(),
            Some(serde_json::json!({"code": 51})),
            "{format:?}"
        );
    }
}

/// Retryable answers and unreachable receivers are retried; a non-retryable answer stops
/// delivery at once (TestBadRequestCompletion from the sender's side).
#[tokio::test]
async fn retries_stop_on_success_or_non_retryable_answers() {
    let unavailable = (
        503,
        vec![("content-type", "application/json".to_owned())],
        r#"{"message":"try again"}"#.to_owned(),
    );
    let mut peer = recorder(vec![
        unavailable.clone(),
        unavailable,
        (204, vec![], String::new()),
    ])
    .await;
    let sender = HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .retry(quick_retry(5));
    let report = sender
        .deliver(
            &peer.url,
            &BTreeMap::new(),
            &completion(Ok(Content::empty())),
        )
        .await;
    assert_eq!(report.attempts, 3, "{report:?}");
    assert_eq!(report.result, Ok(()));
    for _ in 0..3 {
        peer.next().await;
    }

    let bad_request = nexus_runtime::HandlerError::bad_request("invalid callback token");
    let mut peer = recorder(vec![(
        400,
        vec![("content-type", "application/json".to_owned())],
        serde_json::to_string(&bad_request.to_failure()).unwrap(),
    )])
    .await;
    let report = sender
        .deliver(
            &peer.url,
            &BTreeMap::new(),
            &completion(Ok(Content::empty())),
        )
        .await;
    assert_eq!(report.attempts, 1);
    let error = report.result.unwrap_err();
    assert_eq!(error.error_type, HandlerErrorType::BadRequest);
    assert_eq!(error.message, "invalid callback token");
    peer.next().await;

    // A 500 whose override says not to retry is not retried.
    let mut peer = recorder(vec![(
        500,
        vec![("nexus-request-retryable", "false".to_owned())],
        r#"{"message":"broken for good"}"#.to_owned(),
    )])
    .await;
    let report = sender
        .deliver(
            &peer.url,
            &BTreeMap::new(),
            &completion(Ok(Content::empty())),
        )
        .await;
    assert_eq!(report.attempts, 1);
    peer.next().await;

    // Nobody listening: retried until attempts run out, through the CompletionSender trait.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let sender = HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .retry(quick_retry(3));
    let report = sender
        .deliver(
            &format!("http://{addr}/cb"),
            &BTreeMap::new(),
            &completion(Ok(Content::empty())),
        )
        .await;
    assert_eq!(report.attempts, 3);
    let error = report.result.unwrap_err();
    assert_eq!(error.error_type, HandlerErrorType::Unavailable);
    assert!(
        error.message.contains(&addr.to_string()),
        "{}",
        error.message
    );
    let via_trait = sender
        .send(
            format!("http://{addr}/cb"),
            BTreeMap::new(),
            completion(Ok(Content::empty())),
        )
        .await;
    assert!(via_trait.is_err());
}

/// TestBadRequestCompletion from the receiver's side, through HTTP: a completion the receiver
/// cannot read is answered 400 with the problem named (here with a chunked body).
#[tokio::test]
async fn the_receiver_answers_bad_completions_with_400() {
    use futures::stream;
    let listener = nexus_runtime::server::CallbackListener::bind_loopback()
        .await
        .unwrap();
    let url = format!("{}/some-id", listener.callback_url());
    let client = nexus_runtime::Client::builder().build();
    let _receiver = listener.serve(client).unwrap();
    let http = raw_client();
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("{\"mess"), Ok("age\": 1}")];
    let response = http
        .post(&url)
        .header("nexus-operation-state", "failed")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let f = failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("not a Failure JSON"), "{}", f.message);
    // A well-formed chunked completion for an unknown id is NOT_FOUND, not BAD_REQUEST.
    let chunks: Vec<Result<&'static str, std::io::Error>> =
        vec![Ok("{\"message\":"), Ok("\"operation canceled\"}")];
    let response = http
        .post(&url)
        .header("nexus-operation-state", "canceled")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        failure(&response.bytes().await.unwrap()).details.unwrap()["type"],
        "NOT_FOUND"
    );
}
