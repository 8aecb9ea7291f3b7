//! Finished operations stay in the store for the retention, for `attach` and request id
//! deduplication, and are purged in the background after it; unfinished ones are never purged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::client::AttachError;
use nexus_runtime::store::{CallerStore, MemoryStore};
use support::scripted::{Answer, EchoClient, EchoOp, Scripted};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn finished_operations_are_purged_after_the_retention() {
    let transport = Scripted::new("t");
    transport.starts([Answer::Sync("done".into()), Answer::Async("tok".into())]);
    let store: Arc<dyn CallerStore> = Arc::new(MemoryStore::new());
    let client = Client::builder()
        .endpoint("echo", transport.clone())
        .store(store.clone())
        .retention(HOUR)
        .purge_interval(Duration::from_secs(600))
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    let finished = echo
        .echo("a".into())
        .request_id("kept")
        .start()
        .await
        .unwrap();
    let unfinished = echo.echo("b".into()).start().await.unwrap();
    let (finished_id, unfinished_id) = (finished.operation_id(), unfinished.operation_id());
    drop(finished);

    // Within the retention: attach gives the result; the request id is not started again.
    tokio::time::sleep(HOUR / 2).await;
    let attached = client.attach::<EchoOp>(finished_id).await.unwrap();
    assert_eq!(attached.result().await.unwrap(), "done");
    let again = echo
        .echo("a".into())
        .request_id("kept")
        .start()
        .await
        .unwrap();
    assert_eq!(again.operation_id(), finished_id);
    assert_eq!(transport.start_count(), 2);

    // After it (and the next purge): gone; the unfinished one stays.
    tokio::time::sleep(HOUR / 2 + Duration::from_secs(601)).await;
    assert!(store.get(finished_id).await.unwrap().is_none());
    assert!(matches!(
        client.attach::<EchoOp>(finished_id).await,
        Err(AttachError::NotFound(id)) if id == finished_id
    ));
    assert!(store.get(unfinished_id).await.unwrap().is_some());
    assert_eq!(unfinished.token(), Some("tok"));
}

#[tokio::test(start_paused = true)]
async fn a_client_without_a_store_keeps_nothing_once_an_operation_ends() {
    let client = Client::builder()
        .endpoint("echo", Scripted::new("t"))
        .build();
    let handle = EchoClient::new(client.clone(), "echo")
        .echo("a".into())
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    tokio::task::yield_now().await;
    assert!(client.store().get(id).await.unwrap().is_none());
    assert!(matches!(
        client.attach::<EchoOp>(id).await,
        Err(AttachError::NotFound(_))
    ));
    assert_eq!(
        handle.result().await.unwrap(),
        "a",
        "the handle keeps its result"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_without_a_store_can_keep_finished_operations() {
    let client = Client::builder()
        .endpoint("echo", Scripted::new("t"))
        .retention(Duration::from_secs(60))
        .build();
    let handle = EchoClient::new(client.clone(), "echo")
        .echo("a".into())
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(client.attach::<EchoOp>(id).await.is_ok());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(client.store().get(id).await.unwrap().is_none());
}
