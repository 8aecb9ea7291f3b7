//! What the end-to-end tests of `nexus` share: the fraud team's handler served in-process on a
//! loopback port (its dispatcher and server as builders, for tests that add a store, a token or
//! TLS), a caller of it with a store, and the `nexus` binary run on a blocking thread.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use fraud_contract::FraudService;
use nexus_examples::fraud_desk::FraudDesk;
use nexus_runtime::Client;
use nexus_runtime::client::ClientBuilder;
use nexus_runtime::definition::Definition;
use nexus_runtime::http::HandlerServerBuilder;
use nexus_runtime::security::CallbackGuard;
use nexus_runtime::server::{HandlerServer, ServerHandle};
use nexus_runtime::service::{Dispatcher, DispatcherBuilder};
use nexus_runtime::store::Store;
use nexus_runtime::transport::HttpTransport;

/// The fraud team's dispatcher, its checks taking `check_delay`, completions sent to loopback
/// only; add a store, durability options, ... before building it.
pub fn fraud_dispatcher(check_delay: Duration) -> DispatcherBuilder {
    Dispatcher::builder()
        .service(FraudService::handler(FraudDesk::new(check_delay)))
        .callback_guard(CallbackGuard::loopback())
}

/// A server of `dispatcher` that serves the definition of fraud.v1; add authentication, TLS, ...
/// before building it.
pub fn fraud_server(dispatcher: Dispatcher) -> HandlerServerBuilder {
    HandlerServer::builder(dispatcher).definitions(Definition::of::<FraudService>())
}

/// `server` bound to `127.0.0.1:0`: its URL and handle.
pub async fn serve(server: HandlerServerBuilder) -> (String, ServerHandle) {
    let running = server.build().bind("127.0.0.1:0").await.unwrap();
    (running.url(), running)
}

/// The fraud handler on `127.0.0.1:0`, its checks taking `check_delay`, its definition served.
pub async fn fraud_handler(check_delay: Duration) -> (String, ServerHandle) {
    serve(fraud_server(fraud_dispatcher(check_delay).build())).await
}

/// A caller of the fraud handler at `url` as the endpoint `fraud`, recording in `store`.
pub fn fraud_caller(url: &str, store: Arc<dyn Store>) -> ClientBuilder {
    Client::builder()
        .endpoint("fraud", HttpTransport::new(url).unwrap())
        .store(store)
}

/// The output of a run of `nexus`.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `nexus args…` (in `dir`, with no registry in the environment) off the async threads.
pub async fn nexus(dir: &std::path::Path, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = Command::cargo_bin("nexus")
            .unwrap()
            .current_dir(dir)
            .env_remove("NEXUS_REGISTRY")
            .env_remove("NEXUS_TOKEN")
            .env_remove("NEXUS_STORE")
            .env("NO_COLOR", "1")
            .args(&args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// A CA (PEM) and a server certificate for 127.0.0.1 and localhost it signed (chain PEM, key
/// PEM), made at test time (as `nexus-runtime/tests/support/credentials.rs` makes them).
pub fn loopback_certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "nexus test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &issuer).unwrap();
    (issuer.pem(), cert.pem(), key.serialize_pem())
}
