//! TLS and mTLS on loopback with certificates made at test time: a start and its async
//! completion over HTTPS both ways, client certificates (good, from an unknown CA, expired,
//! missing) and what the server hands the request, certificate reload, the handshake timeout.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::routing::get;
use nexus_runtime::codec::Content;
use nexus_runtime::security::PeerCertificates;
use nexus_runtime::server::{
    CallbackListener, HandlerServer, ServeOptions, ServerHandle, ServerLimits,
};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::tls::{ClientAuth, TlsClientConfig, TlsServerConfig};
use nexus_runtime::transport::{HttpTransport, StartRequest, Transport};
use nexus_runtime::{Client, OperationContext, OperationResult};
use serde_json::{Value, json};
use support::credentials::{Ca, Pair};
use support::probe::Probe;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};

/// The probe's operations used here.
#[nexus_runtime::nexus_service(name = "probe")]
pub trait ProbeContract {
    /// Echo.
    #[operation(name = "echo")]
    async fn echo(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
    /// Async, completing at once with the input.
    #[operation(name = "async")]
    async fn async_now(&self, ctx: OperationContext, input: Value) -> OperationResult<Value>;
}

fn server_tls(pair: &Pair) -> nexus_runtime::tls::TlsServerConfigBuilder {
    TlsServerConfig::from_pem(&pair.cert_pem, &pair.key_pem)
}

fn trusting(ca: &Ca) -> nexus_runtime::tls::TlsClientConfigBuilder {
    TlsClientConfig::builder()
        .webpki_roots(false)
        .root_ca_pem(ca.pem())
}

/// Trusts `ca` and presents `pair`.
fn presenting(ca: &Ca, pair: &Pair) -> TlsClientConfig {
    trusting(ca)
        .identity_pem(&pair.cert_pem, &pair.key_pem)
        .build()
        .unwrap()
}

fn reqwest_client(tls: &TlsClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured((*tls.rustls_config()).clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_start_and_its_async_completion_go_over_https_both_ways() {
    let ca = Ca::new("test CA");
    let server_pair = ca.server();
    let client_tls = trusting(&ca).build().unwrap();

    let probe = Probe::new("probe");
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let server = HandlerServer::builder(dispatcher)
        .tls(server_tls(&server_pair).build().unwrap())
        .completion_tls(client_tls.clone())
        .unwrap()
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));

    let listener = CallbackListener::bind_loopback()
        .await
        .unwrap()
        .tls(server_tls(&server_pair).build().unwrap());
    assert!(listener.callback_url().starts_with("https://127.0.0.1:"));
    let transport = HttpTransport::builder(server.url())
        .tls(client_tls)
        .build()
        .unwrap();
    let client = Client::builder()
        .endpoint("probe", transport)
        .callback_url(listener.callback_url())
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let stub = ProbeContractClient::new(client, "probe");

    assert_eq!(
        stub.echo(json!({"sync": 1})).await.unwrap(),
        json!({"sync": 1})
    );
    let out = tokio::time::timeout(Duration::from_secs(10), stub.async_now(json!({"a": 2})))
        .await
        .expect("the completion arrived over https")
        .unwrap();
    assert_eq!(out, json!({"a": 2}));
    assert_eq!(probe.count(), 2);

    // Plain HTTP to the TLS port is not served.
    let plain = support::raw_client()
        .post(format!("http://{}/probe/echo", server.local_addr()))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn https_needs_a_trusted_server_certificate() {
    let ca = Ca::new("test CA");
    let (_dispatcher, server) = tls_probe(server_tls(&ca.server()).build().unwrap()).await;
    // Mozilla's roots do not know the test CA.
    let transport = HttpTransport::new(server.url()).unwrap();
    let error = transport
        .start(StartRequest {
            service: "probe".into(),
            operation: "echo".into(),
            request_id: "r-1".into(),
            headers: Default::default(),
            links: Vec::new(),
            callback: None,
            request_deadline: None,
            operation_timeout: None,
            input: Content::new("application/json", "1"),
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

async fn tls_probe(tls: TlsServerConfig) -> (Dispatcher, ServerHandle) {
    let dispatcher = Dispatcher::builder().service(Probe::new("probe")).build();
    let server = HandlerServer::builder(dispatcher.clone())
        .tls(tls)
        .build()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (dispatcher, server)
}

/// A server answering `GET /peer` with the client's leaf certificate (or `none`) and its
/// address in `x-peer`.
async fn peer_server(tls: TlsServerConfig, limits: ServerLimits) -> ServerHandle {
    let router = Router::new().route(
        "/peer",
        get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| async move {
                let leaf = request
                    .extensions()
                    .get::<PeerCertificates>()
                    .map(|chain| chain.leaf().unwrap().to_vec())
                    .unwrap_or_else(|| b"none".to_vec());
                ([("x-peer", peer.to_string())], leaf)
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ServeOptions::new()
        .tls(tls)
        .limits(limits)
        .serve(listener, router)
        .unwrap()
}

async fn get_peer(
    server: &ServerHandle,
    tls: &TlsClientConfig,
) -> Result<(String, Vec<u8>), String> {
    let response = reqwest_client(tls)
        .get(format!("{}/peer", server.url()))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    assert_eq!(response.status(), 200);
    let peer = response.headers()["x-peer"].to_str().unwrap().to_owned();
    Ok((peer, response.bytes().await.unwrap().to_vec()))
}

#[tokio::test]
async fn mtls_hands_the_verified_client_chain_to_every_request_and_refuses_the_rest() {
    let ca = Ca::new("clients CA");
    let tls = server_tls(&ca.server())
        .client_ca_pem(ca.pem())
        .build()
        .unwrap();
    assert_eq!(tls.client_auth(), Some(ClientAuth::Required));
    let server = peer_server(tls, ServerLimits::default()).await;

    let payments = ca.client("payments");
    let good = presenting(&ca, &payments);
    let (peer, leaf) = get_peer(&server, &good).await.unwrap();
    assert_eq!(leaf, payments.cert_der, "the leaf the client presented");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");

    // From a CA the server does not know.
    let stranger = Ca::new("another CA").client("payments");
    let unknown = presenting(&ca, &stranger);
    assert!(get_peer(&server, &unknown).await.is_err());

    // Expired.
    let old = ca.expired_client("payments");
    let expired = presenting(&ca, &old);
    assert!(get_peer(&server, &expired).await.is_err());

    // None at all.
    assert!(
        get_peer(&server, &trusting(&ca).build().unwrap())
            .await
            .is_err()
    );

    // The server kept serving.
    let (_, leaf) = get_peer(&server, &good).await.unwrap();
    assert_eq!(leaf, payments.cert_der);
}

#[tokio::test]
async fn optional_client_auth_lets_anonymous_clients_in_without_peer_certificates() {
    let ca = Ca::new("clients CA");
    let tls = server_tls(&ca.server())
        .client_ca_pem(ca.pem())
        .client_auth(ClientAuth::Optional)
        .build()
        .unwrap();
    let server = peer_server(tls, ServerLimits::default()).await;
    let (_, leaf) = get_peer(&server, &trusting(&ca).build().unwrap())
        .await
        .unwrap();
    assert_eq!(leaf, b"none");
    let payments = ca.client("payments");
    let with_cert = presenting(&ca, &payments);
    assert_eq!(
        get_peer(&server, &with_cert).await.unwrap().1,
        payments.cert_der
    );
    // A certificate that is presented must still verify.
    let stranger = Ca::new("another CA").client("payments");
    let unknown = presenting(&ca, &stranger);
    assert!(get_peer(&server, &unknown).await.is_err());
}

#[tokio::test]
async fn reload_switches_new_connections_to_the_renewed_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    );
    let old_ca = Ca::new("old CA");
    let old = old_ca.server();
    std::fs::write(&cert, &old.cert_pem).unwrap();
    std::fs::write(&key, &old.key_pem).unwrap();
    let tls = TlsServerConfig::from_pem_files(&cert, &key)
        .build()
        .unwrap();
    let server = peer_server(tls.clone(), ServerLimits::default()).await;
    let trusts_old = trusting(&old_ca).build().unwrap();
    get_peer(&server, &trusts_old).await.unwrap();

    let new_ca = Ca::new("new CA");
    let new = new_ca.server();
    // A half-written renewal is refused and the old certificate stays.
    std::fs::write(&cert, &new.cert_pem).unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let error = tls.reload().unwrap_err();
    assert!(error.message().contains("server-key.pem"), "{error}");
    get_peer(&server, &trusts_old).await.unwrap();

    std::fs::write(&key, &new.key_pem).unwrap();
    tls.reload().unwrap();
    let trusts_new = trusting(&new_ca).build().unwrap();
    get_peer(&server, &trusts_new).await.unwrap();
    assert!(get_peer(&server, &trusts_old).await.is_err());
}

#[tokio::test]
async fn bad_material_is_refused_naming_the_problem() {
    let ca = Ca::new("test CA");
    let pair = ca.server();
    let other = ca.server();
    let error = TlsServerConfig::from_pem(&pair.cert_pem, &other.key_pem)
        .build()
        .unwrap_err();
    assert!(
        error.message().contains("cannot be used together"),
        "{error}"
    );
    let error = TlsServerConfig::from_pem_files("/nonexistent/server.pem", "/nonexistent/key.pem")
        .build()
        .unwrap_err();
    assert!(
        error.message().contains("/nonexistent/server.pem"),
        "{error}"
    );
    let error = TlsServerConfig::from_pem("no PEM here", &pair.key_pem)
        .build()
        .unwrap_err();
    assert!(error.message().contains("no certificate"), "{error}");
    let error = TlsClientConfig::builder()
        .webpki_roots(false)
        .build()
        .unwrap_err();
    assert!(error.message().contains("no root CA"), "{error}");
}

#[tokio::test]
async fn a_handshake_that_never_comes_is_dropped_after_the_handshake_timeout() {
    let ca = Ca::new("test CA");
    let mut limits = ServerLimits::default();
    limits.tls_handshake_timeout = Duration::from_millis(300);
    let server = peer_server(server_tls(&ca.server()).build().unwrap(), limits).await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the server closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    get_peer(&server, &trusting(&ca).build().unwrap())
        .await
        .unwrap();
}
