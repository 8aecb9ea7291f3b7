//! Completion secrets, over real loopback HTTP: the callback receiver accepts a completion only
//! from the callback URL the operation's handler was given (its query carries the operation's
//! secret). A completion without it, with a wrong one, or with another operation's is refused
//! with the answer an unknown operation gets (404, same message) and is not applied; the genuine
//! one still completes the operation afterwards, and sent again it is acknowledged. With SQLite
//! the secret survives a restart; records made before secrets existed take unsigned completions
//! only when the client is told to.
#![cfg(all(feature = "http", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::completion::Completion;
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::protocol::query_param;
use nexus_runtime::security::{CALLBACK_SECRET_PARAM, CallbackGuard, CallbackSecret};
use nexus_runtime::server::{CallbackListener, CompletionRetry, HttpCompletionSender};
use nexus_runtime::store::{
    CallerRecord, CallerStore, MemoryStore, OperationState, RequestKey, SqliteStore,
};
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{Client, HandlerError, OperationContext, OperationResult, codec};
use support::probe::{Recorder, recorder};

/// The contract the tests call.
#[nexus_runtime::nexus_service(name = "greeter.v1")]
pub trait Greeter {
    /// Greets, asynchronously.
    async fn greet(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// A handler that starts every operation asynchronously with the given tokens, in order, and
/// records the start requests (their callback URLs).
async fn async_handler(tokens: &[&str]) -> Recorder {
    recorder(
        tokens
            .iter()
            .map(|token| {
                (
                    201,
                    vec![("content-type", "application/json".to_owned())],
                    serde_json::json!({"token": token, "state": "running"}).to_string(),
                )
            })
            .collect(),
    )
    .await
}

/// The callback URL a recorded start request gave the handler.
async fn next_callback(handler: &mut Recorder) -> String {
    let start = handler.next().await;
    query_param(start.uri.split_once('?').map(|(_, q)| q), "callback").expect("a callback URL")
}

fn completion(token: &str, value: &str) -> Completion {
    Completion {
        token: token.to_owned(),
        outcome: Ok(codec::encode(&value.to_owned()).unwrap()),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    }
}

/// POSTs `completion` to `url` as a handler does, once.
async fn post(url: &str, completion: &Completion) -> Result<(), HandlerError> {
    HttpCompletionSender::new()
        .callback_guard(CallbackGuard::loopback())
        .retry(CompletionRetry::never())
        .deliver(url, &BTreeMap::new(), completion)
        .await
        .result
}

/// `url` without its query: the callback URL without the secret.
fn unsigned(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

/// `url` with `secret` in place of its own.
fn with_secret(url: &str, secret: &str) -> String {
    format!("{}?{CALLBACK_SECRET_PARAM}={secret}", unsigned(url))
}

/// The operation id a callback URL names (its last path segment).
fn id_of(url: &str) -> String {
    unsigned(url).rsplit('/').next().unwrap().to_owned()
}

/// Asserts that `refused` is exactly what a completion for an unknown operation gets at the same
/// receiver (the id aside): a forger cannot tell a known operation from an unknown one.
async fn assert_refused_as_unknown(refused: HandlerError, url: &str) {
    let known = id_of(url);
    let unknown = uuid::Uuid::new_v4().to_string();
    let unknown_url = unsigned(url).replace(&known, &unknown);
    let answer = post(&unknown_url, &completion("t", "x"))
        .await
        .expect_err("an unknown operation");
    assert_eq!(refused.error_type, HandlerErrorType::NotFound, "{refused}");
    assert_eq!(refused.error_type, answer.error_type);
    assert_eq!(refused.message, answer.message.replace(&unknown, &known));
    assert_eq!(refused.is_retryable(), answer.is_retryable());
}

/// Asserts that the operation behind `handle` is still waiting for its completion.
async fn assert_still_waiting(handle: &nexus_runtime::OperationHandle<greeter::Greet>) {
    assert_eq!(
        handle.state(),
        nexus_runtime::client::OperationState::Started
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), handle.result())
            .await
            .is_err(),
        "a refused completion must not end the operation"
    );
}

/// The forgeries and the genuine completion, for a client built by `build` (given its handler's
/// URL and its callback base URL).
async fn forged_completions_are_refused(
    build: impl FnOnce(&str, &str) -> Client,
    acknowledges_repeats: bool,
) {
    let mut handler = async_handler(&["tok-a", "tok-b"]).await;
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let client = build(&handler.url, &listener.callback_url());
    let _receiver = listener.serve(client.clone()).unwrap();
    let greeter = GreeterClient::new(client.clone(), "greeter");
    let a = greeter.greet("a".into()).start().await.unwrap();
    let url_a = next_callback(&mut handler).await;
    let b = greeter.greet("b".into()).start().await.unwrap();
    let url_b = next_callback(&mut handler).await;
    assert_eq!(id_of(&url_a), a.operation_id().to_string());
    let secret_a = query_param(url_a.split_once('?').map(|(_, q)| q), CALLBACK_SECRET_PARAM)
        .expect("a secret");
    let secret_b = query_param(url_b.split_once('?').map(|(_, q)| q), CALLBACK_SECRET_PARAM)
        .expect("a secret");
    assert_ne!(secret_a, secret_b, "a secret per operation");
    assert!(secret_a.len() >= 22, "at least 128 bits: {secret_a}");

    let forged = completion("tok-a", "forged");
    let forgeries = [
        unsigned(&url_a).to_owned(),
        with_secret(&url_a, ""),
        with_secret(&url_a, CallbackSecret::generate().expose()),
        with_secret(&url_a, &secret_a[..secret_a.len() - 1]),
        with_secret(&url_a, &secret_b),
    ];
    for url in &forgeries {
        let refused = post(url, &forged).await.expect_err(url);
        assert_refused_as_unknown(refused, url).await;
    }
    assert_still_waiting(&a).await;

    // The genuine completion, to the URL exactly as given: accepted, and it ends the operation.
    post(&url_a, &completion("tok-a", "hello a")).await.unwrap();
    assert_eq!(a.result().await.unwrap(), "hello a");
    // A forgery after it is still refused: a repeat is acknowledged only with the secret.
    let refused = post(unsigned(&url_a), &completion("tok-a", "hello a"))
        .await
        .expect_err("no secret");
    assert_refused_as_unknown(refused, &url_a).await;
    if acknowledges_repeats {
        post(&url_a, &completion("tok-a", "hello a")).await.unwrap();
        let other = post(&url_a, &completion("tok-a", "another outcome"))
            .await
            .expect_err("first recorded end wins");
        assert_eq!(other.error_type, HandlerErrorType::NotFound);
        assert!(other.message.contains("already finished"), "{other}");
    }
    assert_eq!(a.result().await.unwrap(), "hello a");

    // The other operation was untouched by the forgery that used its secret.
    assert_still_waiting(&b).await;
    post(&url_b, &completion("tok-b", "hello b")).await.unwrap();
    assert_eq!(b.result().await.unwrap(), "hello b");
}

#[tokio::test]
async fn forged_completions_are_refused_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CallerStore> = Arc::new(
        SqliteStore::open(dir.path().join("caller.sqlite3"))
            .await
            .unwrap(),
    );
    forged_completions_are_refused(
        |handler, base| {
            Client::builder()
                .endpoint("greeter", HttpTransport::new(handler).unwrap())
                .callback_url(base)
                .store(store.clone())
                .build()
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn forged_completions_are_refused_with_a_retention_in_memory() {
    forged_completions_are_refused(
        |handler, base| {
            Client::builder()
                .endpoint("greeter", HttpTransport::new(handler).unwrap())
                .callback_url(base)
                .retention(Duration::from_secs(60))
                .build()
        },
        true,
    )
    .await;
}

/// A client without a store keeps each secret in its registry, with the running operation.
#[tokio::test]
async fn forged_completions_are_refused_without_a_store() {
    forged_completions_are_refused(
        |handler, base| {
            Client::builder()
                .endpoint("greeter", HttpTransport::new(handler).unwrap())
                .callback_url(base)
                .build()
        },
        false,
    )
    .await;
}

/// A client on `path` with its receiver on `addr`.
async fn client_on(
    path: &std::path::Path,
    addr: SocketAddr,
    handler: &str,
    legacy: bool,
) -> (
    Client,
    Arc<dyn CallerStore>,
    nexus_runtime::server::ServerHandle,
) {
    let store: Arc<dyn CallerStore> = Arc::new(SqliteStore::open(path).await.unwrap());
    let listener = CallbackListener::bind(addr).await.unwrap();
    let client = Client::builder()
        .endpoint("greeter", HttpTransport::new(handler).unwrap())
        .callback_url(listener.callback_url())
        .store(store.clone())
        .accept_legacy_unsigned_completions(legacy)
        .build();
    let receiver = listener.serve(client.clone()).unwrap();
    (client, store, receiver)
}

/// The handler sends the completion after the caller restarted, to the URL it was given before:
/// the next process, on the same SQLite file and callback address, accepts it (and still refuses
/// a forgery).
#[tokio::test]
async fn the_secret_survives_a_restart_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caller.sqlite3");
    let mut handler = async_handler(&["tok-r"]).await;
    let addr = CallbackListener::bind_loopback()
        .await
        .unwrap()
        .local_addr();
    let (a, _, receiver) = client_on(&path, addr, &handler.url, false).await;
    let handle = GreeterClient::new(a.clone(), "greeter")
        .greet("r".into())
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    let url = next_callback(&mut handler).await;
    drop(handle);
    // Stopped, the process no longer runs the operation, but its receiver still answers: the
    // record decides.
    a.shutdown().await;
    assert_eq!(a.pending_operations(), 0);
    for forged in [unsigned(&url).to_owned(), with_secret(&url, "x")] {
        let refused = post(&forged, &completion("tok-r", "forged"))
            .await
            .expect_err("a forgery");
        assert_refused_as_unknown(refused, &url).await;
    }
    receiver.shutdown().await.unwrap();

    let (b, store, _receiver) = client_on(&path, addr, &handler.url, false).await;
    assert_eq!(b.recover().await.unwrap(), 1);
    let refused = post(unsigned(&url), &completion("tok-r", "forged"))
        .await
        .expect_err("no secret");
    assert_refused_as_unknown(refused, &url).await;
    assert_eq!(
        store.get(id).await.unwrap().unwrap().state,
        OperationState::Started
    );
    post(&url, &completion("tok-r", "after the restart"))
        .await
        .unwrap();
    let resumed = b.attach::<greeter::Greet>(id).await.unwrap();
    assert_eq!(resumed.result().await.unwrap(), "after the restart");
    assert_eq!(
        store.get(id).await.unwrap().unwrap().state,
        OperationState::Succeeded
    );
}

/// A record made before completion secrets (no secret: its handler was given a URL without one).
fn legacy_record() -> CallerRecord {
    let mut record = CallerRecord::new(
        uuid::Uuid::new_v4(),
        RequestKey {
            endpoint: "greeter".into(),
            service: "greeter.v1".into(),
            operation: "greet".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
        },
        codec::encode(&"old".to_owned()).unwrap(),
        serde_json::json!({}),
        std::time::SystemTime::now(),
    );
    record.state = OperationState::Started;
    record.token = Some("tok-old".into());
    record.target = Some("0".into());
    record.attempt = 1;
    record.started_at = Some(std::time::SystemTime::now());
    record
}

/// Unsigned completions for records without a secret are refused by default, and accepted when
/// the client is told to (while operations of an earlier version are in flight); records with a
/// secret need theirs either way.
#[tokio::test]
async fn records_without_a_secret_take_unsigned_completions_only_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caller.sqlite3");
    let handler = async_handler(&[]).await;
    let addr = CallbackListener::bind_loopback()
        .await
        .unwrap()
        .local_addr();
    let record = legacy_record();
    let id = record.id;
    SqliteStore::open(&path)
        .await
        .unwrap()
        .insert(&record)
        .await
        .unwrap();
    let url = format!(
        "http://{addr}{}/{id}",
        nexus_runtime::server::DEFAULT_CALLBACK_PATH
    );

    let (strict, store, receiver) = client_on(&path, addr, &handler.url, false).await;
    let refused = post(&url, &completion("tok-old", "unsigned"))
        .await
        .expect_err("refused by default");
    assert_refused_as_unknown(refused, &url).await;
    assert_eq!(
        store.get(id).await.unwrap().unwrap().state,
        OperationState::Started
    );
    strict.shutdown().await;
    receiver.shutdown().await.unwrap();

    let (lenient, store, _receiver) = client_on(&path, addr, &handler.url, true).await;
    post(&url, &completion("tok-old", "unsigned"))
        .await
        .unwrap();
    let done = store.get(id).await.unwrap().unwrap();
    assert_eq!(done.state, OperationState::Succeeded);
    assert_eq!(
        codec::decode::<String>(done.result.as_ref().unwrap()).unwrap(),
        "unsigned"
    );
    // Operations recorded now have a secret, and need it even so.
    let memory: Arc<dyn CallerStore> = Arc::new(MemoryStore::new());
    let mut signed = legacy_record();
    signed.callback_secret = Some(CallbackSecret::generate());
    memory.insert(&signed).await.unwrap();
    let signed_id = signed.id.to_string();
    let refused = lenient_over(memory, &handler.url, &signed_id).await;
    assert_eq!(refused.error_type, HandlerErrorType::NotFound, "{refused}");
    drop(lenient);
}

/// An unsigned completion for operation `id` of `store`, given to a lenient client directly.
async fn lenient_over(store: Arc<dyn CallerStore>, handler: &str, id: &str) -> HandlerError {
    let client = Client::builder()
        .endpoint("greeter", HttpTransport::new(handler).unwrap())
        .callback_url("http://127.0.0.1:9/nexus/callback")
        .store(store)
        .accept_legacy_unsigned_completions(true)
        .build();
    client
        .deliver_completion(id, None, completion("tok-old", "unsigned"))
        .await
        .expect_err("a record with a secret needs it")
}

/// The secret stays out of `Debug` output and of the errors a failed start records (its start
/// URL's query is the callback URL).
#[tokio::test]
async fn the_secret_stays_out_of_debug_output_and_errors() {
    let secret = CallbackSecret::generate();
    let url = secret.sign_url("http://127.0.0.1:9/nexus/callback/1");
    let callback = nexus_runtime::completion::Callback::Url {
        url: url.clone(),
        headers: BTreeMap::new(),
    };
    let stored = nexus_runtime::store::StoredCallback {
        url,
        headers: BTreeMap::new(),
    };
    let mut record = legacy_record();
    record.callback_secret = Some(secret.clone());
    for shown in [
        format!("{callback:?}"),
        format!("{stored:?}"),
        format!("{record:?}"),
    ] {
        assert!(!shown.contains(secret.expose()), "{shown}");
    }

    // A handler that is not there: the start fails with a transport error naming the handler.
    let closed = CallbackListener::bind_loopback()
        .await
        .unwrap()
        .local_addr();
    let client = Client::builder()
        .endpoint(
            "greeter",
            nexus_runtime::client::EndpointConfig::new(
                HttpTransport::new(format!("http://{closed}")).unwrap(),
            )
            .retry(nexus_runtime::machinery::RetryPolicy::no_retries()),
        )
        .callback_url("http://127.0.0.1:9/nexus/callback")
        .retention(Duration::from_secs(60))
        .build();
    let handle = GreeterClient::new(client.clone(), "greeter")
        .greet("x".into())
        .schedule()
        .unwrap();
    let error = handle.result().await.unwrap_err().to_string();
    assert!(error.contains(&closed.to_string()), "{error}");
    let stored = client
        .store()
        .get(handle.operation_id())
        .await
        .unwrap()
        .unwrap();
    let secret = stored.callback_secret.expect("a secret");
    assert!(!error.contains(secret.expose()), "{error}");
    assert!(!error.contains(CALLBACK_SECRET_PARAM), "{error}");
}
