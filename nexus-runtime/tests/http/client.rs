//! Calls over HTTP through a `Client` with the `HttpTransport`, a handler server and a callback
//! receiver on loopback: typed stubs, request ids, deadlines, async completions (also before the
//! 201), errors; and the transport against a scripted peer for what foreign handlers answer
//! (sdk-go `start_test.go`, `client_test.go`, `failure_test.go`).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_runtime::codec::{Content, RawBytes};
use nexus_runtime::completion::{Callback, Completion};
use nexus_runtime::error::{HandlerErrorType, OperationErrorState, TransportErrorKind};
use nexus_runtime::protocol::{FailureFormat, build_completion_request};
use nexus_runtime::server::{CallbackListener, ServerHandle};
use nexus_runtime::transport::{HttpTransport, StartRequest, StartResponse, Transport};
use nexus_runtime::{CallError, Client, Failure, Link, OperationContext, OperationResult};
use serde_json::{Value, json};
use support::probe::{Probe, recorder, serve_probe};

/// The probe's operations as a typed contract (only its caller stubs are used).
#[nexus_runtime::nexus_service(name = "Ser/vic e")]
pub trait ProbeContract {
    /// Echo.
    #[operation(name = "i need to/be escaped")]
    async fn echo(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// Echo of raw bytes.
    #[operation(name = "echo")]
    async fn echo_bytes(&self, ctx: OperationContext, input: RawBytes)
    -> OperationResult<RawBytes>;
    /// Async, completing at once.
    #[operation(name = "async")]
    async fn async_now(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// Async, until canceled.
    #[operation(name = "hang-async")]
    async fn hang(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// Fails with a cause.
    #[operation(name = "fail")]
    async fn fail(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// Canceled.
    #[operation(name = "canceled")]
    async fn canceled(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// The HandlerError the input describes.
    #[operation(name = "handler-error")]
    async fn handler_error(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// No value.
    #[operation(name = "no-value")]
    async fn no_value(&self, ctx: OperationContext) -> OperationResult<()>;
}

/// A probe behind a handler server, and a client with a callback receiver, all on loopback.
struct Setup {
    probe: Probe,
    stub: ProbeContractClient,
    client: Client,
    base: String,
    _server: ServerHandle,
    _receiver: ServerHandle,
}

async fn setup() -> Setup {
    let probe = Probe::new("Ser/vic e");
    let (_dispatcher, server) = serve_probe(&probe, "/nexus").await;
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let base = format!("{}/nexus", server.url());
    let transport = HttpTransport::new(&base).unwrap();
    let client = Client::builder()
        .endpoint("probe", transport)
        .callback_url(listener.callback_url())
        .build();
    let receiver = listener.serve(client.clone()).unwrap();
    Setup {
        probe,
        stub: ProbeContractClient::new(client.clone(), "probe"),
        client,
        base,
        _server: server,
        _receiver: receiver,
    }
}

/// TestJSON, TestClientRequestID, escaped names through the typed stub.
#[tokio::test]
async fn typed_sync_calls_and_request_ids() {
    let s = setup().await;
    let out = s.stub.echo(json!({"a": [1, 2]})).await.unwrap();
    assert_eq!(out, json!({"a": [1, 2]}));
    let seen = s.probe.last();
    assert_eq!(
        (seen.service.as_str(), seen.operation.as_str()),
        ("Ser/vic e", "i need to/be escaped")
    );
    let id = uuid::Uuid::parse_str(&seen.request_id).expect("a UUID");
    assert_eq!(
        id.get_version_num(),
        7,
        "the default request id is a time-ordered UUIDv7"
    );
    assert_eq!(seen.headers["nexus-request-id"], seen.request_id);
    assert!(seen.headers["user-agent"].starts_with("nexus-rs/"));

    s.stub
        .echo(json!(1))
        .request_id("order-42")
        .header("X-Tenant", "acme")
        .await
        .unwrap();
    let seen = s.probe.last();
    assert_eq!(seen.request_id, "order-42");
    assert_eq!(seen.headers["x-tenant"], "acme");

    let bytes = RawBytes::from(vec![0u8, 1, 2, 255]);
    assert_eq!(s.stub.echo_bytes(bytes.clone()).await.unwrap(), bytes);
    assert_eq!(
        s.probe.last().input.content_type(),
        Some("application/octet-stream")
    );
    s.stub.no_value().await.unwrap();
}

/// TestStart_ContextDeadlinePropagated, ...RequestTimeoutHeaderOverridesContextDeadline and
/// ...TimeoutNotPropagated.
#[tokio::test]
async fn deadlines_propagate() {
    let s = setup().await;
    s.stub
        .echo(json!(0))
        .schedule_to_close_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    let seen = s.probe.last();
    let deadline = seen.deadline.expect("Request-Timeout was sent");
    assert!(deadline > Duration::from_secs(9) && deadline <= Duration::from_secs(10));
    let operation = seen.operation_deadline.expect("Operation-Timeout was sent");
    assert!(operation > Duration::from_secs(9) && operation <= Duration::from_secs(10));

    s.stub
        .echo(json!(0))
        .schedule_to_close_timeout(Duration::from_secs(10))
        .header("Request-Timeout", "100ms")
        .await
        .unwrap();
    let deadline = s.probe.last().deadline.unwrap();
    assert!(deadline <= Duration::from_millis(100), "{deadline:?}");

    // No deadline, no timeout headers (through the transport alone: a client may add its own
    // attempt timeout).
    let transport = HttpTransport::new(&s.base).unwrap();
    transport
        .start(StartRequest {
            service: "Ser/vic e".into(),
            operation: "echo".into(),
            callback: None,
            request_deadline: None,
            operation_timeout: None,
            ..start_request(None)
        })
        .await
        .unwrap();
    let seen = s.probe.last();
    assert_eq!(seen.deadline, None);
    assert_eq!(seen.operation_deadline, None);
    assert!(!seen.headers.contains_key("request-timeout"));
}

/// TestAsync and TestReaderIO's links: an async operation completes through the callback
/// receiver; links come back with the start answer and the completion.
#[tokio::test]
async fn async_operations_complete_by_callback() {
    let s = setup().await;
    let handle = s
        .stub
        .async_now(json!({"n": 1}))
        .link(Link::new("https://caller.example/wf/1", "caller.Workflow"))
        .start()
        .await
        .unwrap();
    assert!(!handle.is_sync());
    assert_eq!(handle.result().await.unwrap(), json!({"n": 1}));
    assert_eq!(
        handle.completion_links(),
        [Link::new("https://probe.example/runs/1?x=y", "probe.Run")]
    );
    // The caller's own link follows the call's: it names the callback receiver and the
    // operation.
    let seen = s.probe.last().links;
    assert_eq!(
        seen[0],
        Link::new("https://caller.example/wf/1", "caller.Workflow")
    );
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].link_type, nexus_runtime::client::CALLER_LINK_TYPE);
    assert!(
        seen[1].url.starts_with("nexus-rs://127.0.0.1:")
            && seen[1]
                .url
                .ends_with(&format!("/operations/{}", handle.operation_id())),
        "{seen:?}"
    );
    let info = handle.info();
    assert_eq!(info.completion_links, handle.completion_links());
    assert_eq!(info.start_links, handle.start_links());
    assert!(s.probe.last().accepts_async);
    assert_eq!(s.client.pending_operations(), 0);
}

/// A completion that arrives before the 201: the handler completes at once, and its 201 is held
/// back until the callback receiver has answered the completion.
#[tokio::test]
async fn a_completion_may_arrive_before_the_start_answer() {
    use axum::extract::Request;
    use axum::middleware::{Next, from_fn};

    let probe = Probe::new("Ser/vic e");
    let dispatcher = nexus_runtime::service::Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let delivered = Arc::new(tokio::sync::Notify::new());
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let hold = {
        let (delivered, order) = (delivered.clone(), order.clone());
        from_fn(move |request: Request, next: Next| {
            let (delivered, order) = (delivered.clone(), order.clone());
            async move {
                let response = next.run(request).await;
                if response.status() == 201 {
                    let waited =
                        tokio::time::timeout(Duration::from_secs(5), delivered.notified()).await;
                    order
                        .lock()
                        .unwrap()
                        .push(format!("201 sent (waited: {})", waited.is_ok()));
                }
                response
            }
        })
    };
    let handler_router = nexus_runtime::server::HandlerServer::new(dispatcher)
        .router()
        .layer(hold);
    let handler_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler_url = format!("http://{}", handler_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(handler_listener, handler_router).await });

    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url = format!(
        "http://{}{}",
        receiver_listener.local_addr().unwrap(),
        nexus_runtime::server::DEFAULT_CALLBACK_PATH
    );
    let client = Client::builder()
        .endpoint("probe", HttpTransport::new(handler_url).unwrap())
        .callback_url(callback_url)
        .build();
    let note = {
        let (delivered, order) = (delivered.clone(), order.clone());
        from_fn(move |request: Request, next: Next| {
            let (delivered, order) = (delivered.clone(), order.clone());
            async move {
                let response = next.run(request).await;
                order
                    .lock()
                    .unwrap()
                    .push(format!("completion answered {}", response.status()));
                delivered.notify_one();
                response
            }
        })
    };
    let receiver_router = nexus_runtime::server::CallbackReceiver::new(client.clone())
        .router()
        .layer(note);
    tokio::spawn(async move { axum::serve(receiver_listener, receiver_router).await });

    let stub = ProbeContractClient::new(client.clone(), "probe");
    let handle = stub.async_now(json!("early")).start().await.unwrap();
    assert_eq!(handle.result().await.unwrap(), json!("early"));
    assert_eq!(
        *order.lock().unwrap(),
        ["completion answered 200 OK", "201 sent (waited: true)"]
    );
    assert_eq!(client.pending_operations(), 0);
}

/// Unknown and repeated completions are NOT_FOUND; malformed ones BAD_REQUEST.
#[tokio::test]
async fn the_receiver_rejects_unknown_repeated_and_malformed_completions() {
    // A scripted handler that answers 201 and records the callback URL it was given.
    let mut handler = recorder(vec![(
        201,
        vec![("content-type", "application/json".into())],
        r#"{"token":"tok-1","state":"running"}"#.into(),
    )])
    .await;
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let receiver_base = listener.callback_url();
    let client = Client::builder()
        .endpoint("probe", HttpTransport::new(&handler.url).unwrap())
        .callback_url(&receiver_base)
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let stub = ProbeContractClient::new(client.clone(), "probe");
    let handle = stub.hang(json!(null)).start().await.unwrap();
    assert_eq!(handle.token(), Some("tok-1"));
    let start = handler.next().await;
    let callback_url =
        nexus_runtime::protocol::query_param(start.uri.split_once('?').map(|(_, q)| q), "callback")
            .expect("the start carried a callback URL");
    assert!(callback_url.starts_with(&receiver_base), "{callback_url}");

    let http = support::raw_client();
    let completion = Completion {
        token: "tok-1".into(),
        outcome: Ok(Content::new("application/json", "\"done\"")),
        links: vec![],
        start_time: None,
        close_time: None,
    };
    let request =
        build_completion_request(&completion, &BTreeMap::new(), FailureFormat::Envelope).unwrap();
    let send = |url: String| {
        http.post(url)
            .headers(request.headers.clone())
            .body(request.body.clone())
            .send()
    };
    // Malformed: no state header.
    let response = http
        .post(&callback_url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let f = support::probe::failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("Nexus-Operation-State"), "{}", f.message);
    // Not POST.
    let response = http.get(&callback_url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["allow"], "POST");
    // Unknown id.
    let response = send(format!("{receiver_base}/no-such-id")).await.unwrap();
    assert_eq!(response.status(), 404);
    // Delivered once, then NOT_FOUND (without a store, the client forgets a finished operation;
    // with one, the same completion again is acknowledged: see durable/caller_receiver.rs).
    assert_eq!(send(callback_url.clone()).await.unwrap().status(), 200);
    assert_eq!(handle.result().await.unwrap(), json!("done"));
    let response = send(callback_url).await.unwrap();
    assert_eq!(response.status(), 404);
    let f = support::probe::failure(&response.bytes().await.unwrap());
    assert_eq!(f.details.unwrap()["type"], "NOT_FOUND");
}

/// TestUnsuccessful and failure_test.go over the wire: OperationErrors keep their cause;
/// TestHandlerErrorRetryBehavior: the retry override survives.
#[tokio::test]
async fn errors_cross_the_wire_intact() {
    let s = setup().await;
    let err = s.stub.fail(json!(null)).await.unwrap_err();
    let op = err.as_operation_error().expect("an operation error");
    assert_eq!(op.state, OperationErrorState::Failed);
    assert_eq!(op.message, "it failed");
    assert_eq!(op.cause.as_deref(), Some(&Failure::new("root cause")));
    let err = s.stub.canceled(json!(null)).await.unwrap_err();
    assert!(err.as_operation_error().unwrap().is_canceled());

    // Retryable errors through the transport alone: one attempt, whatever the client's retry
    // policy would do with it.
    let transport = HttpTransport::new(&s.base).unwrap();
    for retryable in [None, Some(true), Some(false)] {
        let mut spec = json!({"type": "UNAVAILABLE", "message": "later"});
        if let Some(r) = retryable {
            spec["retryable"] = json!(r);
        }
        let request = StartRequest {
            service: "Ser/vic e".into(),
            operation: "handler-error".into(),
            callback: None,
            request_deadline: None,
            operation_timeout: None,
            input: Content::new("application/json", spec.to_string()),
            ..start_request(None)
        };
        let err = transport.start(request).await.unwrap_err();
        let handler = err.as_handler_error().expect("a handler error");
        assert_eq!(handler.error_type, HandlerErrorType::Unavailable);
        assert_eq!(handler.message, "later");
        assert_eq!(handler.retryable_override, retryable);
        assert_eq!(err.is_retryable(), retryable.unwrap_or(true));
    }
    let err = s
        .stub
        .handler_error(json!({"type": "UNAUTHORIZED", "message": "who are you"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.as_handler_error().unwrap().error_type,
        HandlerErrorType::Unauthorized
    );
    assert!(!err.is_retryable());
}

fn start_request(callback: Option<Callback>) -> StartRequest {
    StartRequest {
        service: "svc".into(),
        operation: "op".into(),
        request_id: "req-9".into(),
        headers: BTreeMap::from([("x-custom".into(), "v".into())]),
        links: vec![Link::new("https://caller.example/1", "caller.T")],
        callback,
        request_deadline: Some(tokio::time::Instant::now() + Duration::from_secs(30)),
        operation_timeout: Some(Duration::from_secs(60)),
        input: Content::new("application/json", "{\"x\":1}"),
    }
}

/// What the transport sends, seen by a plain HTTP peer.
#[tokio::test]
async fn the_transport_sends_every_protocol_header() {
    let mut peer = recorder(vec![(
        200,
        vec![("content-type", "text/plain".into())],
        "hi".into(),
    )])
    .await;
    let transport = HttpTransport::new(format!("{}/base/", peer.url)).unwrap();
    let callback = Callback::Url {
        url: "http://127.0.0.1:1/cb/abc?x=1".into(),
        headers: BTreeMap::from([("my-token".into(), "secret".into())]),
    };
    let response = transport
        .start(start_request(Some(callback)))
        .await
        .unwrap();
    assert_eq!(
        response,
        StartResponse::Sync {
            output: Content::new("text/plain", "hi"),
            links: vec![]
        }
    );
    let seen = peer.next().await;
    assert_eq!(
        seen.uri,
        "/base/svc/op?callback=http%3A%2F%2F127.0.0.1%3A1%2Fcb%2Fabc%3Fx%3D1"
    );
    let h = &seen.headers;
    assert_eq!(h["nexus-request-id"], "req-9");
    let timeout =
        nexus_runtime::protocol::parse_duration(h["request-timeout"].to_str().unwrap()).unwrap();
    assert!(timeout > Duration::from_secs(29) && timeout <= Duration::from_secs(30));
    assert!(h["request-timeout"].to_str().unwrap().ends_with("ms"));
    assert_eq!(h["operation-timeout"], "60000ms");
    assert_eq!(h["nexus-callback-my-token"], "secret");
    assert_eq!(
        h["nexus-link"],
        "<https://caller.example/1>; type=\"caller.T\""
    );
    assert_eq!(h["x-custom"], "v");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["content-length"], "7");
    assert_eq!(h["temporal-nexus-failure-support"], "true");
    assert_eq!(&seen.body[..], b"{\"x\":1}");

    transport
        .cancel(nexus_runtime::transport::CancelRequest {
            service: "s/1".into(),
            operation: "o".into(),
            token: "a/sync".into(),
            headers: BTreeMap::new(),
            request_deadline: None,
        })
        .await
        .expect_err("the recorder answers 200, not 202");
    let seen = peer.next().await;
    assert_eq!(seen.uri, "/base/s%2F1/o/cancel");
    assert_eq!(seen.headers["nexus-operation-token"], "a/sync");
    assert!(seen.body.is_empty());
}

/// How the transport reads what other handlers answer.
#[tokio::test]
async fn the_transport_reads_foreign_answers() {
    let json = || vec![("content-type", "application/json".to_owned())];
    let mut peer = recorder(vec![
        (
            201,
            json(),
            r#"{"id":"legacy-id","state":"running"}"#.into(),
        ),
        (
            424,
            vec![
                ("content-type", "application/json".into()),
                ("nexus-operation-state", "failed".into()),
            ],
            r#"{"message":"sync op failed on purpose","metadata":{},"details":{}}"#.into(),
        ),
        (
            400,
            vec![("nexus-request-retryable", "true".into())],
            r#"{"message":"bad input on purpose"}"#.into(),
        ),
        (418, vec![], "short and stout".into()),
        (201, vec![], r#"{"token":"t","state":"running"}"#.into()),
        (
            200,
            vec![(
                "nexus-link",
                "<https://x.example/a>; type=\"bad type\"".into(),
            )],
            String::new(),
        ),
    ])
    .await;
    let transport = HttpTransport::new(&peer.url).unwrap();
    let start = || transport.start(start_request(None));
    assert_eq!(
        start().await.unwrap(),
        StartResponse::Async {
            token: "legacy-id".into(),
            links: vec![]
        }
    );
    let err = start().await.unwrap_err();
    let op = err.as_operation_error().unwrap();
    assert_eq!(
        (op.state, op.message.as_str()),
        (OperationErrorState::Failed, "sync op failed on purpose")
    );
    let err = start().await.unwrap_err();
    let handler = err.as_handler_error().unwrap();
    assert_eq!(handler.error_type, HandlerErrorType::BadRequest);
    assert_eq!(handler.retryable_override, Some(true));
    assert_eq!(
        handler.cause.as_deref().map(|c| c.message.as_str()),
        Some("bad input on purpose")
    );
    for needle in [
        "unexpected response status 418",
        "must be JSON",
        "Nexus-Link",
    ] {
        let err = start().await.unwrap_err();
        assert!(
            matches!(&err, CallError::Transport(t) if t.kind == TransportErrorKind::Protocol),
            "{err:?}"
        );
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    for _ in 0..6 {
        peer.next().await;
    }
}

/// An unreachable handler is a retryable Connect error.
#[tokio::test]
async fn an_unreachable_handler_is_a_retryable_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let transport = HttpTransport::new(format!("http://{addr}")).unwrap();
    let err = transport.start(start_request(None)).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Transport(t) if t.kind == TransportErrorKind::Connect),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
