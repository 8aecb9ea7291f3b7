//! Start requests over HTTP against the handler server, with a raw HTTP client: what the handler
//! sees, and every answer the server gives (sdk-go `start_test.go` and `server_test.go`).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use futures::stream;
use nexus_runtime::error::{HANDLER_ERROR_TYPE, OPERATION_ERROR_TYPE};
use nexus_runtime::{Failure, Link};
use support::probe::{Probe, failure, recorder, serve_probe};
use support::raw_client;

const JSON: &str = "application/json";

/// TestSuccess: escaped names, the callback URL, prefix-stripped callback headers, custom
/// headers, callback headers kept out of the handler's header map, User-Agent.
#[tokio::test]
async fn escaped_names_callback_and_headers() {
    let probe = Probe::new("Ser/vic e");
    let (_dispatcher, server) = serve_probe(&probe, "/").await;
    let mut callback = recorder(vec![]).await;
    let callback_url = format!("{}/callback/x?id=7&a=b%20c", callback.url);
    let url = format!(
        "{}/Ser%2Fvic%20e/i%20need%20to%2Fbe%20escaped?callback={}",
        server.url(),
        form_urlencoded::byte_serialize(callback_url.as_bytes()).collect::<String>()
    );
    let response = raw_client()
        .post(&url)
        .header("content-type", JSON)
        .header("x-custom", "custom value")
        .header("user-agent", "probe-agent/1")
        .header("nexus-callback-token", "cb-token")
        .header("Nexus-Callback-Temporal-Callback-Token", "{\"v\":1}")
        .header("nexus-request-id", "req-1")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], JSON);
    assert_eq!(
        response.headers()["nexus-link"],
        "<https://probe.example/runs/1?x=y>; type=\"probe.Run\""
    );
    assert_eq!(response.text().await.unwrap(), r#"{"hello":"world"}"#);
    let seen = probe.last();
    assert_eq!(seen.service, "Ser/vic e");
    assert_eq!(seen.operation, "i need to/be escaped");
    assert_eq!(seen.request_id, "req-1");
    assert!(seen.accepts_async, "a callback was given");
    assert_eq!(seen.headers["x-custom"], "custom value");
    assert_eq!(seen.headers["user-agent"], "probe-agent/1");
    assert!(
        seen.headers
            .keys()
            .all(|k| !k.starts_with("nexus-callback-")
                && !k.starts_with("content-")
                && k != "host"),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.input.content_type(), Some(JSON));

    // The same call answered asynchronously: the completion goes to the callback URL (path and
    // query kept) with the callback headers, prefix stripped.
    let url = url.replace("i%20need%20to%2Fbe%20escaped", "async");
    let response = raw_client()
        .post(&url)
        .header("content-type", JSON)
        .header("nexus-callback-token", "cb-token")
        .header("Nexus-Callback-Temporal-Callback-Token", "{\"v\":1}")
        .body(r#"{"n":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let info: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let token = info["token"].as_str().unwrap().to_owned();
    let completion = callback.next().await;
    assert_eq!(completion.uri, "/callback/x?id=7&a=b%20c");
    assert_eq!(completion.headers["token"], "cb-token");
    assert_eq!(completion.headers["temporal-callback-token"], "{\"v\":1}");
    assert_eq!(completion.headers["nexus-operation-token"], token.as_str());
    assert_eq!(completion.headers["nexus-operation-state"], "succeeded");
    assert_eq!(&completion.body[..], br#"{"n":1}"#);
    drop(server);
}

/// TestAsync: 201 with exactly `{"token","state":"running"}` as JSON, and response links.
#[tokio::test]
async fn async_start_is_201_with_operation_info() {
    let probe = Probe::new("svc");
    let (dispatcher, server) = serve_probe(&probe, "/nexus").await;
    let response = raw_client()
        .post(format!("{}/nexus/svc/async-token", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], JSON);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"token": "a/sync", "state": "running"})
    );
    assert_eq!(dispatcher.running_operations(), 1);
    assert!(!probe.last().accepts_async, "no callback was given");
}

/// TestUnsuccessful: 424 with the state header, for failed and canceled; and server_test's
/// WriteFailure_OperationError.
#[tokio::test]
async fn unsuccessful_operations_are_424() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    for (operation, state, message) in [
        ("fail", "failed", "it failed"),
        ("canceled", "canceled", "it was canceled"),
    ] {
        let response = raw_client()
            .post(format!("{}/svc/{operation}", server.url()))
            .header("temporal-nexus-failure-support", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 424);
        assert_eq!(response.headers()["nexus-operation-state"], state);
        assert_eq!(response.headers()["content-type"], JSON);
        let f = failure(&response.bytes().await.unwrap());
        assert_eq!(f.failure_type(), Some(OPERATION_ERROR_TYPE));
        assert_eq!(f.details, Some(serde_json::json!({ "state": state })));
        assert_eq!(f.message, message);
    }
    // Without the failure-support header, Temporal's legacy format: the cause alone.
    let response = raw_client()
        .post(format!("{}/svc/fail", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 424);
    assert_eq!(response.headers()["nexus-operation-state"], "failed");
    assert_eq!(
        failure(&response.bytes().await.unwrap()),
        Failure::new("root cause")
    );
}

/// server_test's WriteFailure_HandlerError and TestHandlerErrorRetryBehavior (raw side): the
/// status of the type, the envelope, and the legacy retry header when overridden.
#[tokio::test]
async fn handler_errors_get_their_status_and_retry_header() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    for (spec, status, retry_header) in [
        (r#"{"type":"BAD_REQUEST","message":"nope"}"#, 400, None),
        (
            r#"{"type":"UNAVAILABLE","message":"later","retryable":false}"#,
            503,
            Some("false"),
        ),
        (
            r#"{"type":"BAD_REQUEST","message":"try again","retryable":true}"#,
            400,
            Some("true"),
        ),
        (r#"{"type":"UPSTREAM_TIMEOUT","message":"slow"}"#, 520, None),
        (r#"{"type":"SOMETHING_NEW","message":"?"}"#, 500, None),
    ] {
        let response = raw_client()
            .post(format!("{}/svc/handler-error", server.url()))
            .header("temporal-nexus-failure-support", "true")
            .header("content-type", JSON)
            .body(spec)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{spec}");
        assert_eq!(
            response
                .headers()
                .get("nexus-request-retryable")
                .map(|v| v.to_str().unwrap()),
            retry_header,
            "{spec}"
        );
        let f = failure(&response.bytes().await.unwrap());
        assert_eq!(f.failure_type(), Some(HANDLER_ERROR_TYPE), "{spec}");
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap();
        assert_eq!(f.details.as_ref().unwrap()["type"], spec["type"]);
        assert_eq!(f.message, spec["message"].as_str().unwrap());
    }
}

/// server_test's WriteFailure_GenericError: a handler panic is INTERNAL (500), and the server
/// keeps serving.
#[tokio::test]
async fn a_panicking_handler_is_internal_and_the_server_keeps_serving() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    for _ in 0..3 {
        let response = raw_client()
            .post(format!("{}/svc/panic", server.url()))
            .header("temporal-nexus-failure-support", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let f = failure(&response.bytes().await.unwrap());
        assert_eq!(f.details.unwrap()["type"], "INTERNAL");
        assert!(f.message.contains("panicked on purpose"), "{}", f.message);
    }
    let response = raw_client()
        .post(format!("{}/svc/no-value", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// TestJSON / TestReaderIO / NilContentHeaderDoesNotPanic: JSON, raw bytes with their content
/// headers, a chunked (streamed) body, and no content at all.
#[tokio::test]
async fn payloads_json_bytes_chunked_and_none() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    let client = raw_client();
    let bytes: Vec<u8> = (0..=255).collect();
    let response = client
        .post(format!("{}/svc/echo", server.url()))
        .header("content-type", "application/octet-stream")
        .header("content-encoding", "identity")
        .header("content-x-custom", "kept")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.headers()["content-x-custom"], "kept");
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);
    let seen = probe.last();
    assert_eq!(&seen.input.headers["encoding"], "identity");
    assert!(!seen.input.headers.contains_key("length"));

    // A chunked request body, streamed in pieces.
    let pieces: Vec<Result<&'static str, std::io::Error>> =
        vec![Ok("{\"chunked\":"), Ok(" [1, 2,"), Ok(" 3]}")];
    let response = client
        .post(format!("{}/svc/echo", server.url()))
        .header("content-type", JSON)
        .body(reqwest::Body::wrap_stream(stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{\"chunked\": [1, 2, 3]}");
    assert_eq!(
        probe.last().headers.get("transfer-encoding"),
        None,
        "framing is not a handler header"
    );

    // No content headers and no body.
    let response = client
        .post(format!("{}/svc/no-value", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-type").is_none());
    assert!(response.bytes().await.unwrap().is_empty());
    assert!(probe.last().input.headers.is_empty());
}

/// Links in (to the context) and out (on 200 and 201); a malformed link is BAD_REQUEST.
#[tokio::test]
async fn links_in_and_out() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    let client = raw_client();
    let response = client
        .post(format!("{}/svc/echo", server.url()))
        .header("nexus-link", "<https://a.example/1>; type=\"a.One\"")
        .header(
            "nexus-link",
            "<https://a.example/2>; type=a.Two, <https://a.example/3?q=1>; type=\"a.Three\"; rel=x",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        probe.last().links,
        [
            Link::new("https://a.example/1", "a.One"),
            Link::new("https://a.example/2", "a.Two"),
            Link::new("https://a.example/3?q=1", "a.Three"),
        ]
    );
    for bad in [
        "<https://a.example/1>",
        "<>; type=\"x\"",
        "<https://a/1>; type=\"x\";",
    ] {
        let response = client
            .post(format!("{}/svc/echo", server.url()))
            .header("nexus-link", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let f = failure(&response.bytes().await.unwrap());
        assert!(f.message.contains("Nexus-Link"), "{}", f.message);
    }
}

/// Request-Timeout and Operation-Timeout become the handler's deadlines; a malformed one is
/// BAD_REQUEST naming the header; an expired request deadline answers UPSTREAM_TIMEOUT.
#[tokio::test]
async fn timeouts_become_deadlines() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    let client = raw_client();
    let response = client
        .post(format!("{}/svc/echo", server.url()))
        .header("request-timeout", "9999ms")
        .header("operation-timeout", "1.5m")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = probe.last();
    let deadline = seen.deadline.unwrap();
    assert!(deadline > Duration::from_millis(9_000) && deadline <= Duration::from_millis(9_999));
    let operation = seen.operation_deadline.unwrap();
    assert!(operation > Duration::from_secs(89) && operation <= Duration::from_secs(90));

    client
        .post(format!("{}/svc/echo", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.last().deadline, None, "no header, no deadline");

    for (name, value) in [
        ("request-timeout", "10"),
        ("request-timeout", "soon"),
        ("operation-timeout", "1h"),
    ] {
        let response = client
            .post(format!("{}/svc/echo", server.url()))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{name}: {value}");
        let f = failure(&response.bytes().await.unwrap());
        assert!(
            f.message.contains(name) && f.message.contains(value),
            "{}",
            f.message
        );
    }

    let started = std::time::Instant::now();
    let response = client
        .post(format!("{}/svc/stall", server.url()))
        .header("request-timeout", "50ms")
        .header("temporal-nexus-failure-support", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 520);
    assert!(started.elapsed() < Duration::from_secs(5));
    let f = failure(&response.bytes().await.unwrap());
    assert_eq!(f.details.unwrap()["type"], "UPSTREAM_TIMEOUT");
}

/// Malformed requests: method, path shape, unknown service or operation, callback URL, body
/// size. Each gets a Failure whose message names the problem.
#[tokio::test]
async fn malformed_requests_get_clear_failures() {
    let probe = Probe::new("svc");
    let dispatcher = nexus_runtime::service::Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let server = nexus_runtime::server::HandlerServer::builder(dispatcher)
        .prefix("/nexus/")
        .body_limit(1024)
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = raw_client();
    let base = format!("{}/nexus", server.url());

    let response = client.get(format!("{base}/svc/echo")).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["allow"], "POST");
    let f = failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("GET"), "{}", f.message);

    for (path, status, needle) in [
        ("/svc", 404, "no Nexus route at `/svc`"),
        ("/svc/echo/extra", 404, "no Nexus route"),
        ("/a/b/c/d/e", 404, "no Nexus route"),
        ("", 404, "no Nexus route"),
        ("/other/echo", 404, "service `other` is not served here"),
        ("/svc/nothing", 404, "has no operation `nothing`"),
        ("/svc%zz/echo", 400, "percent-escape"),
    ] {
        let response = client.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let f = failure(&response.bytes().await.unwrap());
        assert!(f.message.contains(needle), "{path}: {}", f.message);
    }
    // Outside the prefix.
    let response = client
        .post(format!("{}/elsewhere/svc/echo", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let response = client
        .post(format!("{base}/svc/echo?callback=ftp%3A%2F%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        failure(&response.bytes().await.unwrap())
            .message
            .contains("callback URL")
    );

    // Bodies over the limit, with Content-Length or chunked.
    let response = client
        .post(format!("{base}/svc/echo"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let f = failure(&response.bytes().await.unwrap());
    assert_eq!(
        f.message,
        "the request body exceeds the limit of 1024 bytes (1 KiB)"
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|_| Ok(vec![b'y'; 300])).collect();
    let response = client
        .post(format!("{base}/svc/echo"))
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A body exactly at the limit is fine.
    let response = client
        .post(format!("{base}/svc/echo"))
        .body(vec![b'z'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        probe.count(),
        1,
        "rejected requests never reached the handler"
    );
}

/// The default body limit is 2 MiB.
#[tokio::test]
async fn default_body_limit_is_two_mebibytes() {
    let probe = Probe::new("svc");
    let (_d, server) = serve_probe(&probe, "/").await;
    let response = raw_client()
        .post(format!("{}/svc/echo", server.url()))
        .body(vec![b'x'; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let f = failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("2097152 bytes (2 MiB)"), "{}", f.message);
}

/// The server's routes merged into an application's own router.
#[tokio::test]
async fn mountable_in_an_application_router() {
    let probe = Probe::new("svc");
    let dispatcher = nexus_runtime::service::Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let nexus = nexus_runtime::server::HandlerServer::builder(dispatcher)
        .prefix("/api/nexus")
        .build();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .merge(nexus.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = raw_client();
    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let response = client
        .post(format!("http://{addr}/api/nexus/svc/echo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(probe.count(), 1);
}
