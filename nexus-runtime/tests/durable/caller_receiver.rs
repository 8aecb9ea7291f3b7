//! The callback receiver records a completion in the store before it answers: 200 only once it
//! is recorded (so a completion that arrives while no driver runs the operation is found by the
//! next process; the same completion again is acknowledged too), 404 for an unknown operation or
//! one finished otherwise, 400 for a token mismatch, 503 when the store cannot record it (the
//! handler sends it again). Over real loopback HTTP, on SQLite.
#![cfg(all(feature = "http", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::codec;
use nexus_runtime::completion::Completion;
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::server::{CallbackListener, CompletionRetry, HttpCompletionSender};
use nexus_runtime::store::{CallerStore, OperationState, SqliteStore};
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{Client, HandlerError};
use support::ledger::{Desk, LedgerClient, Settle, serve};

fn completion(token: &str, value: &str) -> Completion {
    Completion {
        token: token.to_owned(),
        outcome: Ok(codec::encode(&value.to_owned()).unwrap()),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    }
}

/// The callback URL operation `id` gave its handler: under `base`, with its secret from `store`.
async fn callback_url(base: &str, store: &dyn CallerStore, id: uuid::Uuid) -> String {
    let record = store.get(id).await.unwrap().unwrap();
    record
        .callback_secret
        .expect("a callback secret")
        .sign_url(&format!("{base}/{id}"))
}

async fn post(url: &str, completion: &Completion) -> Result<(), HandlerError> {
    HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .retry(CompletionRetry::never())
        .deliver(url, &BTreeMap::new(), completion)
        .await
        .result
}

#[tokio::test]
async fn completions_are_recorded_before_they_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.sqlite3");
    let desk = Desk::new(false);
    let handler = serve(&desk, "127.0.0.1:0").await;
    let sqlite = SqliteStore::open(&path).await.unwrap();
    let store: Arc<dyn CallerStore> = Arc::new(sqlite.clone());
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let base = listener.callback_url();
    let a = Client::builder()
        .endpoint("ledger", HttpTransport::new(handler.url()).unwrap())
        .callback_url(&base)
        .store(store.clone())
        .build();
    let callback_addr = listener.local_addr();
    let receiver = listener.serve(a.clone()).unwrap();
    let ledger = LedgerClient::new(a.clone(), "ledger");
    let first = ledger.settle("p-1".into()).start().await.unwrap();
    let second = ledger.settle("p-2".into()).start().await.unwrap();
    let (id1, id2) = (first.operation_id(), second.operation_id());
    let (token1, token2) = (
        first.token().unwrap().to_owned(),
        second.token().unwrap().to_owned(),
    );

    let (url1, url2) = (
        callback_url(&base, &*store, id1).await,
        callback_url(&base, &*store, id2).await,
    );

    // The process stops driving its operations; its receiver still answers.
    a.shutdown().await;
    assert_eq!(a.pending_operations(), 0);
    post(&url1, &completion(&token1, "by hand"))
        .await
        .expect("recorded and acknowledged without a driver");
    let record = store.get(id1).await.unwrap().unwrap();
    assert_eq!(record.state, OperationState::Succeeded);
    assert_eq!(
        codec::decode::<String>(record.result.as_ref().unwrap()).unwrap(),
        "by hand"
    );

    let refusals = [
        (url1.clone(), completion(&token1, "again")),
        (
            format!("{base}/{}", uuid::Uuid::new_v4()),
            completion("t", "x"),
        ),
        (format!("{base}/not-an-id"), completion("t", "x")),
    ];
    for (url, completion) in &refusals {
        let error = post(url, completion).await.unwrap_err();
        assert_eq!(
            error.error_type,
            HandlerErrorType::NotFound,
            "{url}: {error}"
        );
    }
    let mismatch = post(&url2, &completion("other-token", "x"))
        .await
        .unwrap_err();
    assert_eq!(mismatch.error_type, HandlerErrorType::BadRequest);
    assert!(mismatch.message.contains(&token2), "{}", mismatch.message);

    // The store fails: the receiver answers a retryable error and records nothing.
    sqlite.close().await;
    let unavailable = post(&url2, &completion(&token2, "lost?"))
        .await
        .unwrap_err();
    assert_eq!(
        unavailable.error_type,
        HandlerErrorType::Unavailable,
        "{unavailable}"
    );
    assert!(unavailable.is_retryable());

    // The next process, on the same store and callback address, finds the first completion in
    // the store, and resumes the second operation.
    receiver.shutdown().await.unwrap();
    let store: Arc<dyn CallerStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let listener = CallbackListener::bind(callback_addr).await.unwrap();
    let b = Client::builder()
        .endpoint("ledger", HttpTransport::new(handler.url()).unwrap())
        .callback_url(listener.callback_url())
        .store(store.clone())
        .build();
    let _receiver = listener.serve(b.clone()).unwrap();
    assert_eq!(
        b.recover().await.unwrap(),
        1,
        "only the second is unfinished"
    );
    let first = b.attach::<Settle>(id1).await.unwrap();
    assert_eq!(first.result().await.unwrap(), "by hand");
    let second = b.attach::<Settle>(id2).await.unwrap();
    assert_eq!(
        store.get(id2).await.unwrap().unwrap().state,
        OperationState::Started,
        "the refused completion left it unfinished"
    );
    // Its handler completes it, to the same callback address.
    desk.open();
    let settled = tokio::time::timeout(Duration::from_secs(10), second.result())
        .await
        .expect("the handler completes it");
    assert_eq!(settled.unwrap(), "settled p-2");
    assert_eq!(
        store.get(id2).await.unwrap().unwrap().state,
        OperationState::Succeeded
    );
    assert_eq!(desk.seen().len(), 2, "no start was sent again");
}

/// A completion sent again because its sender missed the first 200 (a handler that died before
/// recording the delivery, an attempt that timed out) is acknowledged and changes nothing, for a
/// success and a failure read back from SQLite; another outcome for the same token is refused.
#[tokio::test]
async fn the_same_completion_sent_again_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::new(false);
    let handler = serve(&desk, "127.0.0.1:0").await;
    let store: Arc<dyn CallerStore> = Arc::new(
        SqliteStore::open(dir.path().join("payments.sqlite3"))
            .await
            .unwrap(),
    );
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let base = listener.callback_url();
    let client = Client::builder()
        .endpoint("ledger", HttpTransport::new(handler.url()).unwrap())
        .callback_url(&base)
        .store(store.clone())
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let ledger = LedgerClient::new(client.clone(), "ledger");
    let ok = ledger.settle("p-1".into()).start().await.unwrap();
    let failed = ledger.settle("p-2".into()).start().await.unwrap();
    let ok_url = callback_url(&base, &*store, ok.operation_id()).await;
    let failed_url = callback_url(&base, &*store, failed.operation_id()).await;
    let success = completion(ok.token().unwrap(), "settled");
    let failure = Completion {
        outcome: Err(nexus_runtime::OperationError::failed(
            "declined by the bank",
        )),
        ..completion(failed.token().unwrap(), "")
    };

    for _ in 0..3 {
        post(&ok_url, &success).await.unwrap();
        post(&failed_url, &failure).await.unwrap();
    }
    assert_eq!(ok.result().await.unwrap(), "settled");
    let error = failed.result().await.unwrap_err();
    assert!(
        error.to_string().contains("declined by the bank"),
        "{error}"
    );

    let other_value = completion(ok.token().unwrap(), "settled twice?");
    let other_failure = Completion {
        outcome: Err(nexus_runtime::OperationError::failed("another reason")),
        ..completion(failed.token().unwrap(), "")
    };
    let canceled = Completion {
        outcome: Err(nexus_runtime::OperationError::canceled(
            "declined by the bank",
        )),
        ..completion(failed.token().unwrap(), "")
    };
    for (url, other) in [
        (&ok_url, &other_value),
        (&failed_url, &other_failure),
        (&failed_url, &canceled),
        (&failed_url, &success),
    ] {
        let refused = post(url, other).await.unwrap_err();
        assert_eq!(refused.error_type, HandlerErrorType::NotFound, "{refused}");
    }
    let record = store.get(ok.operation_id()).await.unwrap().unwrap();
    assert_eq!(
        codec::decode::<String>(record.result.as_ref().unwrap()).unwrap(),
        "settled"
    );
    let record = store.get(failed.operation_id()).await.unwrap().unwrap();
    assert_eq!(record.state, OperationState::Failed);
    assert_eq!(record.error.unwrap().message, "declined by the bank");
}
