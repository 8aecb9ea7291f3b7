//! Real traffic of a Temporal 1.32 server (`tests/data/temporal-captures.jsonl`) replayed against
//! this crate: Temporal's start and cancel requests against the handler server (what the handler
//! sees, what Temporal gets back, and the completions our sender makes compared with what
//! Temporal's receiver was sent), and Temporal's completion callback against the callback
//! receiver.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use nexus_runtime::error::OPERATION_ERROR_TYPE;
use nexus_runtime::protocol::{decode_link, parse_completion, parse_duration};
use nexus_runtime::server::CallbackListener;
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{Client, OperationContext, OperationResult};
use serde_json::Value;
use support::probe::{Probe, failure, recorder, serve_probe};
use support::raw_client;

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/temporal-captures.jsonl"
);

/// The captured exchanges, in order.
fn captures() -> Vec<Value> {
    let text = std::fs::read_to_string(CAPTURES)
        .unwrap_or_else(|e| panic!("the Temporal captures are read from {CAPTURES}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn header<'a>(capture: &'a Value, name: &str) -> Option<&'a str> {
    capture["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// Sends a captured request to `base`: same path (with the callback URL moved to `callback`),
/// same headers and body.
async fn replay(capture: &Value, base: &str, callback: &str) -> reqwest::Response {
    let path = capture["path"].as_str().unwrap().replace(
        "http%3A%2F%2F127.0.0.1%3A17243",
        &form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>(),
    );
    let mut request = raw_client().post(format!("{base}{path}"));
    for (name, value) in capture["headers"].as_object().unwrap() {
        if !["host", "content-length"].contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value.as_str().unwrap());
        }
    }
    request
        .body(capture["body"].as_str().unwrap().to_owned())
        .send()
        .await
        .unwrap()
}

fn operation_of(capture: &Value) -> String {
    let path = capture["path"].as_str().unwrap();
    let path = path.split('?').next().unwrap();
    path.trim_start_matches("/prefix/MyService/")
        .trim_end_matches("/cancel")
        .to_owned()
}

#[tokio::test]
async fn temporal_requests_replayed_against_the_handler_server() {
    let captures = captures();
    let probe = Probe::new("MyService");
    let (_dispatcher, server) = serve_probe(&probe, "/prefix").await;
    let mut temporal = recorder(vec![]).await;
    let mut last_token = None;
    let mut checked = Vec::new();
    for (index, capture) in captures.iter().enumerate() {
        let path = capture["path"].as_str().unwrap_or_default();
        if capture["kind"] != "request-in" || !path.starts_with("/prefix/") {
            continue;
        }
        let operation = operation_of(capture);
        if path.ends_with("/cancel") {
            // Temporal cancels with the token our 201 gave.
            let mut cancel = capture.clone();
            cancel["headers"]["Nexus-Operation-Token"] = Value::from(last_token.clone().unwrap());
            let response = replay(&cancel, &server.url(), &temporal.url).await;
            assert_eq!(response.status(), 202);
            let completion = temporal.next().await;
            assert_eq!(completion.headers["nexus-operation-state"], "canceled");
            checked.push(format!("{operation}/cancel"));
            continue;
        }
        let response = replay(capture, &server.url(), &temporal.url).await;
        let status = response.status();
        let body = response.bytes().await.unwrap();

        // What the handler saw.
        let seen = probe.last();
        assert_eq!(seen.service, "MyService");
        assert_eq!(seen.operation, operation);
        assert_eq!(
            seen.request_id,
            header(capture, "Nexus-Request-Id").unwrap()
        );
        assert_eq!(seen.headers["user-agent"], "temporalio/server");
        assert_eq!(
            seen.headers.get("x-custom-hdr").map(String::as_str),
            header(capture, "X-Custom-Hdr")
        );
        assert!(
            seen.headers
                .keys()
                .all(|k| !k.starts_with("nexus-callback-"))
        );
        assert_eq!(
            seen.links,
            [decode_link(header(capture, "Nexus-Link").unwrap()).unwrap()]
        );
        assert_eq!(
            seen.links[0].link_type,
            "temporal.api.common.v1.Link.WorkflowEvent"
        );
        let request_timeout = parse_duration(header(capture, "Request-Timeout").unwrap()).unwrap();
        let operation_timeout =
            parse_duration(header(capture, "Operation-Timeout").unwrap()).unwrap();
        let deadline = seen.deadline.unwrap();
        assert!(deadline <= request_timeout && deadline > request_timeout - Duration::from_secs(1));
        let op_deadline = seen.operation_deadline.unwrap();
        assert!(
            op_deadline <= operation_timeout
                && op_deadline > operation_timeout - Duration::from_secs(1)
        );
        assert_eq!(seen.input.content_type(), Some("application/json"));
        assert_eq!(
            seen.input.data,
            capture["body"].as_str().unwrap().as_bytes()
        );
        assert!(seen.accepts_async);

        // What Temporal got back, and the completion it would receive.
        match operation.as_str() {
            "echo-sync" => {
                assert_eq!(status, 200);
                assert_eq!(&body[..], capture["body"].as_str().unwrap().as_bytes());
            }
            "fail-sync" => {
                assert_eq!(status, 424);
                // Temporal sent Temporal-Nexus-Failure-Support: true, so it gets the envelope.
                assert_eq!(failure(&body).failure_type(), Some(OPERATION_ERROR_TYPE));
            }
            "echo-async" | "fail-async" | "hang-async" => {
                assert_eq!(status, 201);
                let info: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(info["state"], "running");
                let token = info["token"].as_str().unwrap().to_owned();
                last_token = Some(token.clone());
                if operation != "hang-async" {
                    let ours = temporal.next().await;
                    assert_eq!(ours.uri, "/namespaces/default/nexus/callback");
                    let theirs = captures[index + 1..]
                        .iter()
                        .find(|c| c["kind"] == "callback-out")
                        .expect("the capture of the callback");
                    // Every header Temporal's receiver was sent, ours sends too.
                    for name in theirs["headers"].as_object().unwrap().keys() {
                        assert!(
                            ours.headers
                                .contains_key(name.to_ascii_lowercase().as_str()),
                            "{name}"
                        );
                    }
                    assert_eq!(
                        ours.headers["temporal-callback-token"],
                        header(capture, "Nexus-Callback-Temporal-Callback-Token").unwrap()
                    );
                    assert_eq!(ours.headers["nexus-operation-token"], token.as_str());
                    assert_eq!(
                        ours.headers["nexus-operation-state"],
                        header(theirs, "Nexus-Operation-State").unwrap()
                    );
                    assert_eq!(ours.headers["content-type"], "application/json");
                    parse_completion(&ours.headers, ours.body.clone()).unwrap();
                    if operation == "echo-async" {
                        assert_eq!(&ours.body[..], capture["body"].as_str().unwrap().as_bytes());
                    }
                }
            }
            other => panic!("unexpected captured operation {other}"),
        }
        checked.push(operation);
    }
    assert_eq!(
        checked,
        [
            "echo-sync",
            "echo-async",
            "fail-sync",
            "fail-async",
            "hang-async",
            "hang-async/cancel"
        ]
    );
}

/// The probe's operation as a typed contract, to wait on a Temporal completion.
#[nexus_runtime::nexus_service(name = "EchoService")]
pub trait Echo {
    /// A workflow-run operation.
    #[operation(name = "echo_wf")]
    async fn echo_wf(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
}

#[tokio::test]
async fn temporal_completions_replayed_against_the_callback_receiver() {
    let captures = captures();
    let callback = captures
        .iter()
        .find(|c| c["kind"] == "request-in" && c["path"] == "/callback/ok")
        .expect("the captured completion");
    let token = header(callback, "Nexus-Operation-Token").unwrap();
    // A handler that starts the operation with Temporal's token.
    let mut handler = recorder(vec![(
        201,
        vec![("content-type", "application/json".to_owned())],
        serde_json::json!({"token": token, "state": "running"}).to_string(),
    )])
    .await;
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let client = Client::builder()
        .endpoint("temporal", HttpTransport::new(&handler.url).unwrap())
        .callback_url(listener.callback_url())
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let handle = EchoClient::new(client.clone(), "temporal")
        .echo_wf(serde_json::json!({"from": "curl", "sleep": 1}))
        .start()
        .await
        .unwrap();
    let start = handler.next().await;
    let callback_url =
        nexus_runtime::protocol::query_param(start.uri.split_once('?').map(|(_, q)| q), "callback")
            .unwrap();

    // The callback URL carries the operation's secret; Temporal posts to it verbatim.
    let (unsigned, query) = callback_url.split_once('?').expect("a query");
    assert!(
        nexus_runtime::protocol::query_param(Some(query), "secret").is_some(),
        "{query}"
    );

    // Temporal's completion, as it was sent: refused without the secret (as for an unknown
    // operation), accepted at the URL as given.
    let send = |url: &str| {
        let mut request = raw_client().post(url);
        for (name, value) in callback["headers"].as_object().unwrap() {
            if !["host", "content-length"].contains(&name.to_ascii_lowercase().as_str()) {
                request = request.header(name, value.as_str().unwrap());
            }
        }
        request
            .body(callback["body"].as_str().unwrap().to_owned())
            .send()
    };
    assert_eq!(send(unsigned).await.unwrap().status(), 404);
    let response = send(&callback_url).await.unwrap();
    assert_eq!(response.status(), 200);
    let expected: Value = serde_json::from_str(callback["body"].as_str().unwrap()).unwrap();
    assert_eq!(handle.result().await.unwrap(), expected);
    assert_eq!(
        handle.completion_links(),
        [decode_link(header(callback, "Nexus-Link").unwrap()).unwrap()]
    );

    // The failed completion shape Temporal's peers send: a bare failure with the state header.
    let failed = captures
        .iter()
        .find(|c| {
            c["kind"] == "callback-out" && header(c, "Nexus-Operation-State") == Some("failed")
        })
        .unwrap();
    let mut headers = http::HeaderMap::new();
    for (name, value) in failed["headers"].as_object().unwrap() {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.as_str().unwrap().parse().unwrap(),
        );
    }
    let completion =
        parse_completion(&headers, failed["body"].as_str().unwrap().to_owned().into()).unwrap();
    let error = completion.outcome.unwrap_err();
    assert_eq!(error.message, "async op failed on purpose");
    assert!(!error.is_canceled());
}
