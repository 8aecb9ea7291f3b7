//! Caller identity over real loopback HTTP: authentication (401), allowlists (403), request ids
//! scoped by principal, cancel only by the starting principal, per-principal quotas (429).
#![cfg(all(feature = "http", feature = "auth"))]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::CallError;
use nexus_runtime::codec::Content;
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::security::{
    AccessPolicy, AnyOf, BearerAuthenticator, CallbackGuard, CertificateAuthenticator,
    PeerCertificates, Principal, PrincipalKind, StaticTokens,
};
use nexus_runtime::server::{HandlerServer, ServerHandle};
use nexus_runtime::service::{Dispatcher, Quota};
use nexus_runtime::store::{HandlerStore, MemoryStore};
use nexus_runtime::transport::{HttpTransport, StartRequest, StartResponse, Transport};
use support::probe::{Probe, failure};
use support::raw_client;

const PAYMENTS: &str = "token-of-payments";
const LEDGER: &str = "token-of-ledger";
const ADMIN: &str = "token-of-admin";

fn tokens() -> StaticTokens {
    StaticTokens::new()
        .token("payments", PAYMENTS)
        .token("ledger", LEDGER)
        .token("admin", ADMIN)
}

/// `fraud.v1` may be called by `payments` and `admin`; its `fail` operation only by `admin`.
fn policy() -> AccessPolicy {
    AccessPolicy::new()
        .allow("fraud.v1", ["payments", "admin"])
        .allow_operation("fraud.v1", "fail", ["admin"])
}

struct Setup {
    probe: Probe,
    dispatcher: Dispatcher,
    store: Arc<MemoryStore>,
    server: ServerHandle,
}

/// The probe as `fraud.v1` behind bearer tokens and [`policy`], with a memory store.
async fn setup(quota: Quota) -> Setup {
    let probe = Probe::new("fraud.v1");
    let store = Arc::new(MemoryStore::new());
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .store(store.clone())
        .access(policy())
        .quota(quota)
        .callback_guard(CallbackGuard::loopback())
        .build();
    let server = HandlerServer::builder(dispatcher.clone())
        .authenticator(BearerAuthenticator::new(tokens()))
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    Setup {
        probe,
        dispatcher,
        store,
        server,
    }
}

/// A raw POST that asks for HandlerError envelopes in Failures (so their type is in the body).
fn post(url: String, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = raw_client()
        .post(url)
        .header("temporal-nexus-failure-support", "true");
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// A start request of `operation` without a request id or callback.
fn start_request(operation: &str, input: Content) -> StartRequest {
    support::start_request("fraud.v1", operation, input)
}

async fn refused(response: reqwest::Response, status: u16) -> nexus_runtime::Failure {
    assert_eq!(response.status(), status);
    let body = response.bytes().await.unwrap();
    failure(&body)
}

fn handler_type(f: &nexus_runtime::Failure) -> HandlerErrorType {
    nexus_runtime::HandlerError::from_failure(f)
        .unwrap_or_else(|| panic!("not a HandlerError: {f:?}"))
        .error_type
}

#[tokio::test]
async fn unauthenticated_unauthorized_and_allowed_callers() {
    let s = setup(Quota::default()).await;
    let url = |path: &str| format!("{}/{path}", s.server.url());

    // No credentials: 401 with a challenge, whatever the path; nothing about what is served.
    for path in ["fraud.v1/echo-sync", "nope.v1/echo", "fraud.v1/nope"] {
        let response = post(url(path), None).body("1").send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let f = refused(response, 401).await;
        assert_eq!(handler_type(&f), HandlerErrorType::Unauthenticated);
        assert_eq!(f.message, "no bearer token");
    }
    // A wrong token.
    let response = post(url("fraud.v1/echo-sync"), Some("guessed"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let f = refused(response, 401).await;
    assert_eq!(f.message, "the bearer token is not valid");

    // Known but not allowed: 403 naming the caller, not what exists (the same answer for a
    // service that does not exist); an operation narrowed to `admin`.
    for (path, token, message) in [
        (
            "fraud.v1/echo-sync",
            LEDGER,
            "caller `token:ledger` may not call `fraud.v1/echo-sync`",
        ),
        (
            "nope.v1/echo",
            LEDGER,
            "caller `token:ledger` may not call `nope.v1/echo`",
        ),
        (
            "fraud.v1/fail",
            PAYMENTS,
            "caller `token:payments` may not call `fraud.v1/fail`",
        ),
    ] {
        let response = post(url(path), Some(token)).send().await.unwrap();
        let f = refused(response, 403).await;
        assert_eq!(handler_type(&f), HandlerErrorType::Unauthorized);
        assert_eq!(f.message, message);
    }
    assert_eq!(s.probe.count(), 0, "no refused request reached the handler");

    // Allowed: the handler sees the principal.
    let response = post(url("fraud.v1/echo-sync"), Some(PAYMENTS))
        .header("content-type", "application/json")
        .body("42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "42");
    assert_eq!(
        s.probe.last().principal,
        Principal::new("payments", PrincipalKind::Token)
    );
    assert!(!s.probe.last().headers.contains_key("authorization"));
    assert_eq!(
        post(url("fraud.v1/fail"), Some(ADMIN))
            .send()
            .await
            .unwrap()
            .status(),
        424
    );
    // An allowed caller asking for what does not exist: NOT_FOUND, listing nothing.
    let f = refused(
        post(url("fraud.v1/nope"), Some(PAYMENTS))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(f.message, "service `fraud.v1` has no operation `nope`");
}

#[tokio::test]
async fn the_http_transport_sends_its_bearer_token() {
    let s = setup(Quota::default()).await;
    let start = |service: &str| StartRequest {
        service: service.into(),
        headers: [("authorization".to_owned(), "Bearer overridden".to_owned())].into(),
        ..start_request(
            "echo-sync",
            Content::new("application/json", b"\"hi\"".to_vec()),
        )
    };
    let transport = HttpTransport::builder(s.server.url())
        .bearer_token(PAYMENTS)
        .build()
        .unwrap();
    let answer = transport.start(start("fraud.v1")).await.unwrap();
    assert!(matches!(answer, StartResponse::Sync { .. }), "{answer:?}");
    let anonymous = HttpTransport::new(s.server.url()).unwrap();
    match anonymous.start(start("fraud.v1")).await {
        Err(CallError::Handler(e)) => assert_eq!(e.error_type, HandlerErrorType::Unauthenticated),
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    assert!(
        HttpTransport::builder(s.server.url())
            .bearer_token("line\nbreak")
            .build()
            .is_err()
    );
}

/// Starts `hang-async` with request id `request_id` and callback `callback` as the holder of
/// `token`; the operation token.
async fn start_hanging(s: &Setup, token: &str, request_id: &str, callback: &str) -> String {
    let response = post(
        format!(
            "{}/fraud.v1/hang-async?callback={}",
            s.server.url(),
            form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
        ),
        Some(token),
    )
    .header("nexus-request-id", request_id)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let info: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    info["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_replayed_request_id_from_another_principal_is_another_operation() {
    let s = setup(Quota::default()).await;
    let first = start_hanging(&s, PAYMENTS, "req-1", "http://127.0.0.1:9/payments").await;
    // The admin replays the payments caller's request id with its own callback.
    let second = start_hanging(&s, ADMIN, "req-1", "http://127.0.0.1:9/attacker").await;
    assert_ne!(first, second, "the replay must not reveal the first token");
    assert_eq!(
        s.probe.count(),
        2,
        "the replay ran as an operation of its own"
    );
    let record = s.store.get_async(&first).await.unwrap().unwrap();
    assert_eq!(record.callback.unwrap().url, "http://127.0.0.1:9/payments");
    assert_eq!(record.principal.name(), "payments");
    let replayed = s.store.get_async(&second).await.unwrap().unwrap();
    assert_eq!(replayed.principal.name(), "admin");
    // The first caller's own retry still gets its own operation.
    let again = start_hanging(&s, PAYMENTS, "req-1", "http://127.0.0.1:9/payments").await;
    assert_eq!(again, first);
    assert_eq!(s.probe.count(), 2);
}

#[tokio::test]
async fn only_the_starting_principal_may_cancel() {
    let s = setup(Quota::default()).await;
    let token = start_hanging(&s, PAYMENTS, "req-c", "http://127.0.0.1:9/cb").await;
    let cancel = |as_token: &'static str| {
        post(
            format!("{}/fraud.v1/hang-async/cancel", s.server.url()),
            Some(as_token),
        )
        .header("nexus-operation-token", token.clone())
        .send()
    };
    // Another principal: the token is answered as unknown, and nothing is canceled.
    let f = refused(cancel(ADMIN).await.unwrap(), 404).await;
    assert_eq!(handler_type(&f), HandlerErrorType::NotFound);
    assert_eq!(
        f.message,
        format!("no running `hang-async` operation has token `{token}`")
    );
    let record = s.store.get_async(&token).await.unwrap().unwrap();
    assert_eq!(record.cancel_requested_at, None);
    assert_eq!(s.dispatcher.running_operations(), 1);
    // A principal not allowed at all: 403 before anything else.
    assert_eq!(cancel(LEDGER).await.unwrap().status(), 403);
    // The starting principal.
    assert_eq!(cancel(PAYMENTS).await.unwrap().status(), 202);
    wait_until(|| s.dispatcher.running_operations() == 0).await;
}

#[tokio::test]
async fn a_foreign_cancel_of_a_recorded_operation_is_refused_too() {
    // The operation is recorded in the store but not running in this dispatcher (as after a
    // restart, or on another replica): the record's principal decides.
    let s = setup(Quota::default()).await;
    let token = start_hanging(&s, PAYMENTS, "req-r", "http://127.0.0.1:9/cb").await;
    let other = Dispatcher::builder()
        .service(Probe::new("fraud.v1"))
        .store(s.store.clone())
        .access(policy())
        .durability(nexus_runtime::service::DurabilityOptions::default().owner("replica-b"))
        .build();
    let request = || nexus_runtime::transport::CancelRequest {
        service: "fraud.v1".into(),
        operation: "hang-async".into(),
        token: token.clone(),
        headers: Default::default(),
        request_deadline: None,
    };
    let admin = Principal::new("admin", PrincipalKind::Token);
    let e = other.cancel_as(&admin, request()).await.unwrap_err();
    assert_eq!(e.error_type, HandlerErrorType::NotFound);
    assert_eq!(
        s.store
            .get_async(&token)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested_at,
        None
    );
    let payments = Principal::new("payments", PrincipalKind::Token);
    other.cancel_as(&payments, request()).await.unwrap();
    assert!(
        s.store
            .get_async(&token)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested_at
            .is_some()
    );
    other.shutdown().await;
}

async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the condition did not hold in 2 s");
}

#[tokio::test]
async fn the_quota_refuses_with_429_and_recovers_when_operations_end() {
    let s = setup(Quota::unlimited().max_running(2)).await;
    let a = start_hanging(&s, PAYMENTS, "q-1", "http://127.0.0.1:9/cb").await;
    start_hanging(&s, PAYMENTS, "q-2", "http://127.0.0.1:9/cb").await;
    assert_eq!(s.dispatcher.running_operations_of("payments"), 2);
    let third = || {
        post(
            format!(
                "{}/fraud.v1/hang-async?callback=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
                s.server.url()
            ),
            Some(PAYMENTS),
        )
        .header("nexus-request-id", "q-3")
        .send()
    };
    let f = refused(third().await.unwrap(), 429).await;
    assert_eq!(handler_type(&f), HandlerErrorType::ResourceExhausted);
    assert!(
        f.message
            .contains("`token:payments` has 2 async operations running"),
        "{}",
        f.message
    );
    assert_eq!(s.dispatcher.running_operations_of("payments"), 2);
    // Another principal has its own allowance; sync operations are never refused.
    start_hanging(&s, ADMIN, "q-1", "http://127.0.0.1:9/cb").await;
    let sync = post(
        format!("{}/fraud.v1/echo-sync", s.server.url()),
        Some(PAYMENTS),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(sync.status(), 200);
    // One ends: the retry of the refused start (same request id) is admitted.
    let cancel = post(
        format!("{}/fraud.v1/hang-async/cancel", s.server.url()),
        Some(PAYMENTS),
    )
    .header("nexus-operation-token", a)
    .send()
    .await
    .unwrap();
    assert_eq!(cancel.status(), 202);
    wait_until(|| s.dispatcher.running_operations_of("payments") == 1).await;
    assert_eq!(third().await.unwrap().status(), 201);
    assert_eq!(s.dispatcher.running_operations_of("payments"), 2);
}

#[tokio::test]
async fn the_input_bytes_quota() {
    let probe = Probe::new("fraud.v1");
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .quota(
            Quota::unlimited()
                .max_input_bytes(10)
                .principal("big", Quota::unlimited()),
        )
        .build();
    let start = |input: &str| {
        start_request(
            "hang-async",
            Content::new("text/plain", input.as_bytes().to_vec()),
        )
    };
    let small = Principal::local("small");
    dispatcher.start_as(&small, start("123456")).await.unwrap();
    let e = dispatcher
        .start_as(&small, start("123456"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, nexus_runtime::error::StartError::Handler(h)
            if h.error_type == HandlerErrorType::ResourceExhausted && h.is_retryable()),
        "{e:?}"
    );
    dispatcher.start_as(&small, start("1234")).await.unwrap();
    let big = Principal::local("big");
    for _ in 0..3 {
        dispatcher.start_as(&big, start("123456")).await.unwrap();
    }
}

#[tokio::test]
async fn a_client_certificate_or_a_token() {
    // A server whose connections carry the verified chain of a client certificate, as the TLS
    // server puts it into each request's extensions.
    let probe = Probe::new("fraud.v1");
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .access(policy())
        .build();
    let authenticator = AnyOf::new()
        .or(CertificateAuthenticator::new())
        .or(BearerAuthenticator::new(tokens()));
    let server = HandlerServer::builder(dispatcher)
        .authenticator(authenticator)
        .build();
    let der = support::credentials::certificate(Some("payments"), &[], &[]);
    let chain: Arc<[Vec<u8>]> = Arc::from(vec![der]);
    let app = server.router().layer(tower::util::MapRequestLayer::new(
        move |mut request: axum::extract::Request| {
            if request.headers().contains_key("x-test-client-certificate") {
                request
                    .extensions_mut()
                    .insert(PeerCertificates(chain.clone()));
            }
            request
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/fraud.v1/echo-sync",
        listener.local_addr().unwrap()
    );
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let response = post(url.clone(), None)
        .header("x-test-client-certificate", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        probe.last().principal,
        Principal::new("payments", PrincipalKind::Certificate)
    );
    let response = post(url.clone(), Some(ADMIN)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(probe.last().principal.name(), "admin");
    // Neither: both kinds are named, with the bearer challenge.
    let response = post(url.clone(), None).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let f = refused(response, 401).await;
    assert_eq!(f.message, "no verified client certificate; no bearer token");
    serving.abort();
}

#[tokio::test]
async fn in_process_principals() {
    use nexus_runtime::transport::InProcessTransport;
    let probe = Probe::new("fraud.v1");
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .access(policy())
        .build();
    let start = || start_request("echo-sync", Content::empty());
    let local = InProcessTransport::new(dispatcher.clone()).principal(Principal::local("payments"));
    local.start(start()).await.unwrap();
    assert_eq!(probe.last().principal, Principal::local("payments"));
    // Anonymous principals never match a named rule.
    match InProcessTransport::new(dispatcher).start(start()).await {
        Err(CallError::Handler(e)) => {
            assert_eq!(e.error_type, HandlerErrorType::Unauthorized);
            assert_eq!(
                e.message,
                "caller `anonymous` may not call `fraud.v1/echo-sync`"
            );
        }
        other => panic!("expected UNAUTHORIZED, got {other:?}"),
    }
}

/// Names the caller after the address it connects from: what a custom authenticator can read
/// from a request's extensions on the standalone server.
struct ByPeerAddress;

impl nexus_runtime::security::Authenticator for ByPeerAddress {
    fn authenticate<'a>(
        &'a self,
        request: &'a http::request::Parts,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Principal, nexus_runtime::security::AuthenticationError>,
    > {
        use axum::extract::ConnectInfo;
        use futures::FutureExt as _;
        let peer = request
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        async move {
            peer.map(|ip| Principal::local(format!("host {ip}")))
                .ok_or_else(|| {
                    nexus_runtime::security::AuthenticationError::missing("no peer address")
                })
        }
        .boxed()
    }
}

#[tokio::test]
async fn an_authenticator_sees_the_peer_address() {
    let probe = Probe::new("fraud.v1");
    let dispatcher = Dispatcher::builder().service(probe.clone()).build();
    let server = HandlerServer::builder(dispatcher)
        .authenticator(ByPeerAddress)
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let response = post(format!("{}/fraud.v1/echo-sync", server.url()), None)
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(probe.last().principal, Principal::local("host 127.0.0.1"));
}
