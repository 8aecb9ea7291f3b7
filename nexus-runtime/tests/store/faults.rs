//! The SQLite store under faults of its own: a full database (SQLite's `max_page_count`, which
//! fails writes with SQLITE_FULL exactly as a full disk does) fails the writes that needed the
//! space, as retryable errors, and the store works again as soon as there is space, without a
//! restart.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use crate::suite;
use crate::support;

use std::time::Duration;

use nexus_runtime::store::{
    BeginStart, CallerRecord, CallerStore as _, HandlerStore as _, InsertOutcome, SqliteStore,
    StartAnswer,
};
use suite::fixtures::{at, json, record, start_key};

/// A record whose input needs pages of its own (64 KiB).
fn big_record(n: u128) -> CallerRecord {
    let mut record = record(n, at(n as u64));
    record.input = json(&format!("\"{}\"", "x".repeat(64 * 1024)));
    record
}

/// Limits the database to the pages it has now: every write that needs another page fails with
/// SQLITE_FULL, as on a full disk.
async fn fill_up(store: &SqliteStore) {
    let pages = store.page_count().await.unwrap();
    assert_eq!(store.set_max_page_count(Some(pages)).await.unwrap(), pages);
}

/// Gives the database room again.
async fn free_space(store: &SqliteStore) {
    let cap = store.set_max_page_count(None).await.unwrap();
    assert!(cap > 1_000_000, "{cap}");
}

#[tokio::test]
async fn a_full_database_fails_writes_as_retryable_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    store.insert(&record(1, at(1))).await.unwrap();

    // A start cannot be claimed without space.
    fill_up(&store).await;
    let key = start_key("req-full");
    let mut huge = key.clone();
    huge.request_id = "r".repeat(64 * 1024);
    let error = store
        .begin_start(&huge, at(2), at(2) + Duration::from_secs(30))
        .await
        .expect_err("no space for the start");
    assert!(error.is_retryable(), "{error}");

    // Concurrent writes share batches: every one that needed space fails, retryable, and none
    // of them is kept.
    let writes = (10..42).map(|n| {
        let store = store.clone();
        tokio::spawn(async move { store.insert(&big_record(n)).await })
    });
    for write in futures::future::join_all(writes).await {
        let error = write.unwrap().expect_err("no space for the record");
        assert!(
            error.is_retryable(),
            "a write that did not commit is retryable: {error}"
        );
        assert!(
            error.to_string().contains("database or disk is full"),
            "every write of a failed batch names the cause: {error}"
        );
    }
    for n in 10..42 {
        assert!(
            store
                .get(suite::fixtures::op_id(n))
                .await
                .unwrap()
                .is_none()
        );
    }
    free_space(&store).await;
    // The same store handle works again at once: new writes, and the writes that failed.
    assert!(matches!(
        store.insert(&big_record(10)).await.unwrap(),
        InsertOutcome::Inserted
    ));
    store.insert(&record(2, at(2))).await.unwrap();
    let claim = match store
        .begin_start(&key, at(3), at(3) + Duration::from_secs(30))
        .await
        .unwrap()
    {
        BeginStart::Claimed(claim) => claim,
        other => panic!("expected a claim, got {other:?}"),
    };
    let answer = StartAnswer::Sync {
        output: json("{}"),
        links: Vec::new(),
    };
    assert!(
        store
            .finish_start(&key, &claim, &answer, None, at(4))
            .await
            .unwrap()
    );
    assert!(
        store
            .get(suite::fixtures::op_id(10))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get(suite::fixtures::op_id(2))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_failed_batch_leaves_no_transaction_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    store.insert(&record(1, at(1))).await.unwrap();
    fill_up(&store).await;
    let error = store
        .insert(&big_record(10))
        .await
        .expect_err("no space for the record");
    assert!(error.is_retryable(), "{error}");
    free_space(&store).await;
    for n in 2..6 {
        store.insert(&record(n, at(n as u64))).await.unwrap();
    }
    // Committed, not held in a transaction left open: another connection sees every write, and
    // none of the one that failed.
    let other = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    for n in 1..6 {
        assert!(
            other
                .get(suite::fixtures::op_id(n))
                .await
                .unwrap()
                .is_some(),
            "{n}"
        );
    }
    assert!(
        other
            .get(suite::fixtures::op_id(10))
            .await
            .unwrap()
            .is_none()
    );
}

/// An operation its client's store cannot record is never attempted, and says so: not started
/// (not failed), with the store's error.
#[tokio::test]
async fn an_operation_the_store_cannot_record_is_not_started() {
    use nexus_runtime::client::EndpointConfig;
    use nexus_runtime::{CallError, Client};
    use support::scripted::{Answer, EchoClient, Scripted};

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let transport = Scripted::new("echo");
    transport.starts([Answer::Sync("hello".into())]);
    let client = Client::builder()
        .endpoint("echo", EndpointConfig::new(transport.clone()))
        .store(std::sync::Arc::new(store.clone()))
        .build();
    store.close().await;
    let error = EchoClient::new(client.clone(), "echo")
        .echo("hello".into())
        .await
        .expect_err("the store is closed");
    match &error {
        CallError::NotStarted(message) => {
            assert!(message.contains("unavailable"), "{message}");
        }
        other => panic!("expected NotStarted, got {other:?}"),
    }
    assert_eq!(transport.start_count(), 0, "nothing was sent");
}
