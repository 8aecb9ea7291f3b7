//! What the runtime's tests share, one module for every area's binary (each includes it with
//! `#[path = "../support/mod.rs"] mod support;`): the backends and the backend matrix
//! (`backend`), the PostgreSQL harness (`postgres`), services and peers the tests call or that
//! call them, credentials made at test time, and small helpers. A binary uses part of it.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod backend;
#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(all(feature = "admin", feature = "auth"))]
pub mod admin;
pub mod credentials;
#[cfg(feature = "http")]
pub mod faults;
pub mod jobs;
#[cfg(feature = "http")]
pub mod ledger;
#[cfg(feature = "http")]
pub mod probe;
#[cfg(feature = "http")]
pub mod receiver;
pub mod scripted;
#[cfg(feature = "http")]
pub mod trace_chain;

use std::net::SocketAddr;
use std::time::Duration;

/// A plain HTTP client for raw requests (not the transport under test): no proxy.
#[cfg(feature = "http")]
pub fn raw_client() -> reqwest::Client {
    #[cfg(feature = "tls")]
    nexus_runtime::tls::install_default_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A start request for `service`/`operation` with `input`: no request id, headers, links,
/// callback or timeouts (set the fields a test needs).
pub fn start_request(
    service: &str,
    operation: &str,
    input: nexus_runtime::codec::Content,
) -> nexus_runtime::transport::StartRequest {
    nexus_runtime::transport::StartRequest {
        service: service.into(),
        operation: operation.into(),
        request_id: String::new(),
        headers: Default::default(),
        links: Vec::new(),
        callback: None,
        request_deadline: None,
        operation_timeout: None,
        input,
    }
}

/// A loopback address nobody listens on (yet).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Waits (polling every 10 ms) until `check` holds, or panics after `within` saying `what`.
/// Whether an operation's cancel request is in `state`: a condition for
/// [`OperationHandle::wait_for`](nexus_runtime::OperationHandle::wait_for).
pub fn cancel_is(
    state: nexus_runtime::client::CancelState,
) -> impl FnMut(&nexus_runtime::client::OperationInfo) -> bool {
    move |info| info.cancellation.as_ref().is_some_and(|c| c.state == state)
}

pub async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
