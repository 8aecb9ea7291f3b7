//! Shared pieces of the HTTP tests: a probe service that records what the handler sees, a
//! recording HTTP peer, and helpers to run servers on loopback port 0.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::FutureExt as _;
use http::{HeaderMap, StatusCode};
use nexus_runtime::codec::Content;
use nexus_runtime::operation::{AsyncOperation, Headers};
use nexus_runtime::server::{HandlerServer, ServerHandle};
use nexus_runtime::service::{Dispatcher, RawStart, ServiceHandler, StartFuture};
use nexus_runtime::{HandlerError, Link, OperationContext, OperationError};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a probe handler saw of one start request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub service: String,
    pub operation: String,
    pub request_id: String,
    pub headers: Headers,
    pub links: Vec<Link>,
    pub deadline: Option<Duration>,
    pub operation_deadline: Option<Duration>,
    pub accepts_async: bool,
    pub input: Content,
    pub principal: nexus_runtime::security::Principal,
}

/// The operations of the probe service.
pub const PROBE_OPERATIONS: &[&str] = &[
    "echo",
    "i need to/be escaped",
    "f/o/o",
    "async",
    "async-token",
    "hang-async",
    "fail",
    "canceled",
    "handler-error",
    "panic",
    "stall",
    "no-value",
    "echo-sync",
    "echo-async",
    "fail-sync",
    "fail-async",
];

/// A hand-written service handler (any name) that records every start and answers according to
/// the operation's name:
/// - `echo`, `echo-sync`, escaped names: the input as is (content headers included), with a link;
/// - `async`, `echo-async`: async, completing at once with the input;
/// - `async-token`: async with the token `a/sync`, waiting for cancellation;
/// - `hang-async`: async, waiting for cancellation;
/// - `fail`, `fail-sync`: OperationError failed with a cause; `fail-async` fails asynchronously;
/// - `canceled`: OperationError canceled;
/// - `handler-error`: the HandlerError the input JSON describes (`type`, `message`, `retryable`);
/// - `panic`: panics; `stall`: sleeps an hour; `no-value`: empty result.
#[derive(Clone)]
pub struct Probe {
    pub name: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Probe {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            seen: Arc::default(),
        }
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the handler saw no request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn response_link() -> Link {
    Link::new("https://probe.example/runs/1?x=y", "probe.Run")
}

impl ServiceHandler for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    fn operation_names(&self) -> Vec<&str> {
        PROBE_OPERATIONS.to_vec()
    }

    fn start(&self, operation: &str, ctx: OperationContext, input: Content) -> Option<StartFuture> {
        if !PROBE_OPERATIONS.contains(&operation) {
            return None;
        }
        let now = Instant::now();
        self.seen.lock().unwrap().push(Seen {
            service: ctx.service().to_owned(),
            operation: ctx.operation().to_owned(),
            request_id: ctx.request_id().to_owned(),
            headers: ctx.headers().clone(),
            links: ctx.links().to_vec(),
            deadline: ctx.deadline().map(|d| d.saturating_duration_since(now)),
            operation_deadline: ctx
                .operation_deadline()
                .map(|d| d.saturating_duration_since(now)),
            accepts_async: ctx.accepts_async(),
            input: input.clone(),
            principal: ctx.principal().clone(),
        });
        let operation = operation.to_owned();
        Some(
            async move {
                match operation.as_str() {
                    "async" | "echo-async" => Ok(RawStart::Async(AsyncOperation::new(
                        move |work| async move {
                            work.add_link(response_link());
                            Ok(input)
                        },
                    ))),
                    "async-token" | "hang-async" => {
                        let op = AsyncOperation::new(|work| async move {
                            work.cancelled().await;
                            Err(OperationError::canceled("canceled as asked"))
                        });
                        Ok(RawStart::Async(if operation == "async-token" {
                            op.with_token("a/sync")
                        } else {
                            op
                        }))
                    }
                    "fail-async" => Ok(RawStart::Async(AsyncOperation::new(|_| async {
                        Err(OperationError::failed("async op failed on purpose"))
                    }))),
                    "fail" | "fail-sync" => Err(OperationError::failed("it failed")
                        .with_cause(nexus_runtime::Failure::new("root cause"))
                        .into()),
                    "canceled" => Err(OperationError::canceled("it was canceled").into()),
                    "handler-error" => {
                        let spec: serde_json::Value =
                            serde_json::from_slice(&input.data).unwrap_or_default();
                        let mut error = HandlerError::new(
                            nexus_runtime::error::HandlerErrorType::from_wire(
                                spec["type"].as_str().unwrap_or("INTERNAL"),
                            ),
                            spec["message"].as_str().unwrap_or("no message"),
                        );
                        error.retryable_override = spec["retryable"].as_bool();
                        Err(error.into())
                    }
                    "panic" => panic!("the probe panicked on purpose"),
                    "stall" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(RawStart::Sync(Content::empty()))
                    }
                    "no-value" => Ok(RawStart::Sync(Content::empty())),
                    _ => {
                        ctx.add_link(response_link());
                        Ok(RawStart::Sync(input))
                    }
                }
            }
            .boxed(),
        )
    }
}

/// A handler server for `probe` under `prefix` on loopback port 0.
pub async fn serve_probe(probe: &Probe, prefix: &str) -> (Dispatcher, ServerHandle) {
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let server = HandlerServer::builder(dispatcher.clone())
        .prefix(prefix)
        .build();
    let handle = server.bind("127.0.0.1:0").await.expect("bind");
    (dispatcher, handle)
}

/// One request a [`Recorder`] received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A plain HTTP peer on loopback that records requests and answers them from a script of
/// (status, headers, body); after the script, 200 with an empty body.
pub struct Recorder {
    pub url: String,
    pub requests: mpsc::UnboundedReceiver<Recorded>,
    _handle: tokio::task::JoinHandle<()>,
}

/// One scripted answer: status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);
type Script = Arc<Mutex<std::collections::VecDeque<Answer>>>;

pub async fn recorder(script: Vec<Answer>) -> Recorder {
    let (tx, rx) = mpsc::unbounded_channel();
    let state: (mpsc::UnboundedSender<Recorded>, Script) =
        (tx, Arc::new(Mutex::new(script.into())));
    let app = Router::new()
        .fallback(
            |State((tx, script)): State<(mpsc::UnboundedSender<Recorded>, Script)>,
             request: Request| async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let _ = tx.send(Recorded {
                    uri: parts.uri.to_string(),
                    headers: parts.headers,
                    body,
                });
                let next = script.lock().unwrap().pop_front();
                let (status, headers, body) = next.unwrap_or((200, vec![], String::new()));
                let mut response: Response = body.into_response();
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            },
        )
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Recorder {
        url,
        requests: rx,
        _handle: handle,
    }
}

impl Recorder {
    /// The next recorded request (waits at most 5 s).
    pub async fn next(&mut self) -> Recorded {
        tokio::time::timeout(Duration::from_secs(5), self.requests.recv())
            .await
            .expect("no request reached the recorder in 5 s")
            .expect("recorder closed")
    }
}

/// Parses a Failure body.
pub fn failure(body: &[u8]) -> nexus_runtime::Failure {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not a Failure ({e}): {}", String::from_utf8_lossy(body)))
}
