//! The callback guard over real loopback sockets: callback URLs that would reach the handler's
//! own network are refused at start time (400 naming the URL, nothing run) or, when only their
//! DNS answer shows it, at delivery before any connection; framing callback headers are refused;
//! redirects are not followed; answers are read up to a bound; permanent failures end an outbox
//! delivery at once; timeouts too long for the clocks are 400.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::IntoResponse;
use nexus_runtime::codec::{Content, ContentHeaders};
use nexus_runtime::completion::{Callback, Completion};
use nexus_runtime::security::CallbackGuard;
use nexus_runtime::server::{
    CompletionRetry, DeliveryReport, HandlerServer, HttpCompletionSender, ServerHandle,
};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::{Delivery, MemoryStore, Store};
use nexus_runtime::transport::StartResponse;
use support::backend::Backend;
use support::jobs::{Job, JobsImpl, dispatcher_with_guard, quick_options, start};
use support::probe::{Probe, failure, recorder};
use support::raw_client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A TCP listener on loopback that counts the connections it accepts (and closes them).
struct Counting {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Counting {
    async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self {
            addr,
            accepted,
            _task: task,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The connections accepted, after giving late ones a moment.
    async fn accepted(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A handler server for `probe` under `guard`.
async fn serve(probe: &Probe, guard: CallbackGuard) -> (Dispatcher, ServerHandle) {
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(guard)
        .build();
    let server = HandlerServer::new(dispatcher.clone());
    (dispatcher, server.bind("127.0.0.1:0").await.unwrap())
}

fn escaped(url: &str) -> String {
    form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

/// Starts `svc/async` with `callback`; returns the status and the body.
async fn start_async(
    server: &ServerHandle,
    callback: &str,
    headers: &[(&str, &str)],
) -> (u16, bytes::Bytes) {
    let mut request = raw_client()
        .post(format!(
            "{}/svc/async?callback={}",
            server.url(),
            escaped(callback)
        ))
        .header("content-type", "application/json")
        .body("\"payload\"");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

fn completion() -> Completion {
    Completion {
        token: "tok-1".into(),
        outcome: Ok(Content {
            headers: ContentHeaders::with_type("application/json"),
            data: bytes::Bytes::from_static(b"{\"result\":1}"),
        }),
        links: vec![],
        start_time: None,
        close_time: None,
    }
}

async fn deliver(guard: CallbackGuard, url: &str) -> DeliveryReport {
    HttpCompletionSender::new()
        .callback_guard(guard)
        .retry(CompletionRetry::never())
        .attempt_timeout(Duration::from_secs(5))
        .deliver(url, &BTreeMap::new(), &completion())
        .await
}

/// Every disguise of a non-public address is refused at start time with a 400 naming the URL,
/// before the handler runs and without any connection, by the default guard and by a guard
/// allowing every host over plain http (a wildcard never opens a non-public address).
#[tokio::test]
async fn ssrf_callback_urls_are_refused_at_start() {
    let target = Counting::bind().await;
    let port = target.port();
    let urls = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        format!("http://127.0.0.1:{port}/"),
        "http://127.0.0.1:22/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        format!("http://0x7f000001:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://127.0.0.1.:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://192.168.0.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://0.0.0.0/".to_owned(),
        format!("http://user:secret@example.com:{port}/"),
    ];
    for guard in [
        CallbackGuard::default(),
        CallbackGuard::new(["http://*:*"]).unwrap(),
    ] {
        let probe = Probe::new("svc");
        let (_dispatcher, server) = serve(&probe, guard.clone()).await;
        for url in &urls {
            let (status, body) = start_async(&server, url, &[]).await;
            assert_eq!(status, 400, "{url} with {guard:?}");
            let message = failure(&body).message;
            assert!(
                message.contains(&format!("callback URL `{url}`")),
                "{message}"
            );
            assert!(message.contains("refused"), "{message}");
        }
        assert_eq!(probe.count(), 0, "the handler never ran");
    }
    assert_eq!(target.accepted().await, 0, "nothing connected");
}

/// Callback headers that would reframe or reroute the completion are refused at start time,
/// naming the header; the others are forwarded, the body intact.
#[tokio::test]
async fn framing_callback_headers_are_refused_at_start() {
    let probe = Probe::new("svc");
    let (_dispatcher, server) = serve(&probe, CallbackGuard::loopback()).await;
    let target = Counting::bind().await;
    let url = format!("http://127.0.0.1:{}/cb", target.port());
    for name in [
        "Host",
        "Content-Length",
        "Content-Type",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "Expect",
    ] {
        let header = format!("Nexus-Callback-{name}");
        let (status, body) = start_async(&server, &url, &[(&header, "1")]).await;
        assert_eq!(status, 400, "{header}");
        let message = failure(&body).message;
        assert!(
            message
                .to_ascii_lowercase()
                .contains(&format!("`{}`", header.to_ascii_lowercase())),
            "{message}"
        );
    }
    assert_eq!(probe.count(), 0);
    assert_eq!(target.accepted().await, 0);

    let mut receiver = recorder(vec![]).await;
    let callback = format!("{}/cb", receiver.url);
    let headers = [
        ("Nexus-Callback-Authorization", "Bearer caller-secret"),
        ("Nexus-Callback-Cookie", "session=1"),
    ];
    let (status, _) = start_async(&server, &callback, &headers).await;
    assert_eq!(status, 201);
    let delivered = receiver.next().await;
    assert_eq!(delivered.headers["authorization"], "Bearer caller-secret");
    assert_eq!(delivered.headers["cookie"], "session=1");
    assert_eq!(&delivered.body[..], b"\"payload\"");
    assert_eq!(delivered.headers["content-length"], "9");
}

/// A host name allowed at start time (through a wildcard) whose addresses are not public is
/// refused at delivery, before any connection, and the refusal is final.
#[tokio::test]
async fn names_resolving_to_refused_addresses_are_refused_before_connecting() {
    let target = Counting::bind().await;
    let guard = CallbackGuard::new(["http://*:*"]).unwrap();
    let url = format!("http://localhost:{}/cb", target.port());
    assert!(guard.check_url(&url).is_ok(), "allowed at start time");
    let report = deliver(guard, &url).await;
    let error = report.result.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.message.contains("localhost resolves to"), "{error}");
    assert_eq!(report.attempts, 1);
    assert_eq!(target.accepted().await, 0, "nothing connected");

    // Named exactly, the same host is delivered to.
    let mut receiver = recorder(vec![]).await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    let named = CallbackGuard::new([format!("http://localhost:{port}")]).unwrap();
    let report = deliver(named, &format!("http://localhost:{port}/cb")).await;
    assert_eq!(report.result, Ok(()));
    assert_eq!(receiver.next().await.uri, "/cb");
}

/// A receiver answering with a redirect: the redirect is not followed (its target sees
/// nothing) and the attempt fails for good, saying why.
#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = Counting::bind().await;
    let location = format!("http://127.0.0.1:{}/stolen", elsewhere.port());
    let redirecting = recorder(vec![(
        307,
        vec![("location", location.clone())],
        String::new(),
    )])
    .await;
    let report = deliver(
        CallbackGuard::loopback(),
        &format!("{}/cb", redirecting.url),
    )
    .await;
    let error = report.result.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.message.contains("307"), "{error}");
    assert!(error.message.contains("redirects"), "{error}");
    assert!(error.message.contains(&location), "{error}");
    assert_eq!(
        elsewhere.accepted().await,
        0,
        "the redirect target saw nothing"
    );
}

/// Other client errors are final; 5xx and 408 may go away.
#[tokio::test]
async fn client_errors_are_final_server_errors_are_not() {
    for (status, retryable) in [
        (410, false),
        (413, false),
        (418, false),
        (408, true),
        (502, true),
    ] {
        let receiver = recorder(vec![(status, vec![], "no".into())]).await;
        let report = deliver(CallbackGuard::loopback(), &format!("{}/cb", receiver.url)).await;
        let error = report.result.unwrap_err();
        assert_eq!(error.is_retryable(), retryable, "{status}: {error}");
    }
}

/// A receiver answering 500 with a 256 MiB body (streamed, never held by the test): the sender
/// reads a bounded prefix and drops the connection, so the attempt ends quickly and the receiver
/// manages to write only a small part of it.
#[tokio::test]
async fn huge_error_answers_are_read_up_to_a_bound() {
    const BODY: u64 = 256 * 1024 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // The request: headers and the small body, in whatever pieces they come.
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: \
             {BODY}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0u64;
        while written < BODY {
            match socket.write(&chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        written
    });
    let started = tokio::time::Instant::now();
    let report = deliver(CallbackGuard::loopback(), &url).await;
    let elapsed = started.elapsed();
    let error = report.result.unwrap_err();
    assert!(error.is_retryable(), "a 500 may go away: {error}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let written = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the receiver sees the connection closed")
        .unwrap();
    // What the kernel buffers on loopback, plus the bounded read: far below the body.
    assert!(
        written < 32 * 1024 * 1024,
        "the receiver wrote {written} bytes of {BODY}"
    );
}

/// Timeouts longer than the clocks and stores hold are 400 naming the header, never a retryable
/// 500; the longest a Go caller can send is accepted. With a store (where such a deadline used to
/// fail to be recorded) and without.
#[tokio::test]
async fn timeouts_too_long_are_bad_requests() {
    let probe = Probe::new("svc");
    let with_store = Dispatcher::builder()
        .service(probe.clone())
        .store(Arc::new(MemoryStore::new()))
        .build();
    let stored = HandlerServer::new(with_store.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (_plain, plain) = serve(&probe, CallbackGuard::default()).await;
    for server in [&stored, &plain] {
        for header in ["Operation-Timeout", "Request-Timeout"] {
            for value in [
                "18446744073709551ms",
                "99999999999999999999999999m",
                "600000000000s",
            ] {
                let response = raw_client()
                    .post(format!("{}/svc/echo", server.url()))
                    .header(header, value)
                    .header("nexus-request-id", format!("{header}-{value}"))
                    .body("x")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 400, "{header}: {value}");
                let message = failure(&response.bytes().await.unwrap()).message;
                assert!(
                    message.contains(&format!("`{}`", header.to_ascii_lowercase())),
                    "{message}"
                );
            }
            // Go's largest time.Duration, as a Go caller formats it.
            let response = raw_client()
                .post(format!("{}/svc/echo", server.url()))
                .header(header, "9223372036854ms")
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{header}");
        }
    }
    with_store.shutdown().await;
}

/// The dead delivery of `token`, once there is one.
async fn dead_delivery(store: &Arc<dyn Store>, token: &str) -> Delivery {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let dead = store.list_dead_deliveries(100).await.unwrap();
        if let Some(d) = dead.into_iter().find(|d| d.completion.token == token) {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead delivery for {token}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a quick job of a durable dispatcher under `guard` whose completion goes to `url`, and
/// returns the dead delivery it ends as.
async fn dead_job(guard: CallbackGuard, url: &str) -> Delivery {
    let store = Backend::memory().open().await;
    let d = dispatcher_with_guard(&JobsImpl::new(), store.clone(), quick_options("h"), guard);
    let _wiring = HandlerServer::new(d.clone());
    let mut request = start(
        "process",
        "job-1",
        &Job {
            id: "job-1".into(),
            millis: 1,
        },
    );
    request.callback = Some(Callback::Url {
        url: url.to_owned(),
        headers: BTreeMap::new(),
    });
    let StartResponse::Async { token, .. } = d.start(request).await.unwrap() else {
        panic!("expected an async start");
    };
    let dead = dead_delivery(&store, &token).await;
    d.shutdown().await;
    dead
}

/// The outbox gives up a delivery the guard refuses at delivery time at once: one attempt, the
/// reason kept, no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_gives_up_refused_callbacks_at_once() {
    let target = Counting::bind().await;
    let url = format!("http://localhost:{}/cb", target.port());
    let dead = dead_job(CallbackGuard::new(["http://*:*"]).unwrap(), &url).await;
    assert_eq!(dead.attempts, 1, "{dead:?}");
    let error = dead.last_error.unwrap();
    assert!(error.contains("not retried"), "{error}");
    assert!(error.contains("localhost resolves to"), "{error}");
    assert_eq!(target.accepted().await, 0);
}

/// ... and one answered with a redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_gives_up_redirected_callbacks_at_once() {
    let elsewhere = Counting::bind().await;
    let location = format!("http://127.0.0.1:{}/", elsewhere.port());
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                http::StatusCode::TEMPORARY_REDIRECT,
                [("location", location)],
            )
                .into_response()
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dead = dead_job(CallbackGuard::loopback(), &url).await;
    assert_eq!(dead.attempts, 1, "{dead:?}");
    assert!(dead.last_error.unwrap().contains("307"));
    assert_eq!(elsewhere.accepted().await, 0);
}

/// Callback headers recorded before the header rules existed are refused at delivery too,
/// before any connection.
#[tokio::test]
async fn framing_callback_headers_are_refused_at_delivery() {
    let target = Counting::bind().await;
    let url = format!("http://127.0.0.1:{}/cb", target.port());
    for name in [
        "host",
        "content-length",
        "transfer-encoding",
        "proxy-authorization",
    ] {
        let headers = BTreeMap::from([(name.to_owned(), "1".to_owned())]);
        let report = HttpCompletionSender::new()
            .callback_guard(CallbackGuard::loopback())
            .deliver(&url, &headers, &completion())
            .await;
        assert_eq!(report.attempts, 0, "{name}");
        let error = report.result.unwrap_err();
        assert!(!error.is_retryable(), "{error}");
        assert!(
            error.message.contains(&format!("`Nexus-Callback-{name}`")),
            "{error}"
        );
    }
    assert_eq!(target.accepted().await, 0);
}
