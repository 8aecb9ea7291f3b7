//! Races between a completion and the task waiting for it, each of which left a call waiting
//! forever for a completion the store had recorded. Found by `crash-test` (a restarted `payments`
//! run hung, every operation recorded as succeeded):
//! - a call whose request id is recorded already follows the recorded operation; the record it
//!   finds may be out of date when it adopts the operation (the task that ran it finished in
//!   between), and must not be driven again from that stale record;
//! - a completion request that goes away (its sender died) after the store recorded the
//!   completion must still wake the task waiting for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use nexus_runtime::completion::Completion;
use nexus_runtime::store::{
    CallerRecord, CallerStore, CancelRequestOutcome, CompletionOutcome, InsertOutcome, MemoryStore,
    OperationId, RequestKey, StoreFuture,
};
use nexus_runtime::{Client, codec};
use support::scripted::{Answer, EchoClient, Scripted, callback_secret, deliver};
use tokio::sync::Notify;

/// A memory store that, once armed, holds the next insert that finds its request id recorded
/// (after reading the record it answers with), or the next completion it records (after recording
/// it), until released.
#[derive(Default)]
struct Gated {
    inner: MemoryStore,
    armed: AtomicBool,
    armed_completion: AtomicBool,
    paused: Notify,
    release: Notify,
}

impl Gated {
    async fn pause(&self) {
        self.paused.notify_one();
        self.release.notified().await;
    }
}

impl CallerStore for Gated {
    fn insert<'a>(&'a self, record: &'a CallerRecord) -> StoreFuture<'a, InsertOutcome> {
        Box::pin(async move {
            let outcome = self.inner.insert(record).await?;
            if matches!(outcome, InsertOutcome::Exists(_))
                && self.armed.swap(false, Ordering::SeqCst)
            {
                self.paused.notify_one();
                self.release.notified().await;
            }
            Ok(outcome)
        })
    }
    fn get(&self, id: OperationId) -> StoreFuture<'_, Option<CallerRecord>> {
        self.inner.get(id)
    }
    fn find_by_request_id<'a>(
        &'a self,
        key: &'a RequestKey,
    ) -> StoreFuture<'a, Option<CallerRecord>> {
        self.inner.find_by_request_id(key)
    }
    fn list_unfinished(&self) -> StoreFuture<'_, Vec<CallerRecord>> {
        self.inner.list_unfinished()
    }
    fn update<'a>(&'a self, record: &'a mut CallerRecord) -> StoreFuture<'a, bool> {
        self.inner.update(record)
    }
    fn request_cancel(
        &self,
        id: OperationId,
        at: SystemTime,
    ) -> StoreFuture<'_, CancelRequestOutcome> {
        self.inner.request_cancel(id, at)
    }
    fn record_completion<'a>(
        &'a self,
        id: OperationId,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompletionOutcome> {
        Box::pin(async move {
            let outcome = self.inner.record_completion(id, completion, now).await?;
            if self.armed_completion.swap(false, Ordering::SeqCst) {
                self.pause().await;
            }
            Ok(outcome)
        })
    }
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<CallerRecord>> {
        self.inner.claim(owner, now, lease, limit)
    }
    fn renew<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<OperationId>> {
        self.inner.renew(owner, now, lease)
    }
    fn release<'a>(&'a self, owner: &'a str, ids: &'a [OperationId]) -> StoreFuture<'a, u64> {
        self.inner.release(owner, ids)
    }
    fn release_all<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, u64> {
        self.inner.release_all(owner)
    }
    fn purge_finished(&self, closed_before: SystemTime) -> StoreFuture<'_, u64> {
        self.inner.purge_finished(closed_before)
    }
}

fn client(store: Arc<Gated>, transport: &Scripted) -> Client {
    Client::builder()
        .endpoint("echo", transport.clone())
        .store(store)
        .build()
}

fn done(token: &str) -> Completion {
    Completion {
        token: token.into(),
        outcome: Ok(codec::encode(&"done".to_owned()).unwrap()),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    }
}

#[tokio::test]
async fn a_call_adopting_an_operation_that_just_finished_gets_its_outcome() {
    let store = Arc::new(Gated::default());
    // The first process starts the operation (async) and stops.
    let first = Scripted::new("first");
    first.starts([Answer::Async("tok-1".into())]);
    let a = client(store.clone(), &first);
    let started = EchoClient::new(a.clone(), "echo")
        .echo("hello".into())
        .request_id("req-1")
        .start()
        .await
        .unwrap();
    let id = started.operation_id();
    a.shutdown().await;

    // The next process resumes it; a call with the same request id finds it recorded, started.
    let second = Scripted::new("second");
    let b = client(store.clone(), &second);
    assert_eq!(b.recover().await.unwrap(), 1);
    store.armed.store(true, Ordering::SeqCst);
    let call = EchoClient::new(b.clone(), "echo")
        .echo("hello".into())
        .request_id("req-1")
        .schedule()
        .unwrap();
    store.paused.notified().await;
    // Meanwhile its completion arrives and the resumed task ends.
    deliver(&b, id, done("tok-1")).await.unwrap();
    let resumed = b.attach::<support::scripted::EchoOp>(id).await.unwrap();
    assert_eq!(resumed.result().await.unwrap(), "done");
    while b.pending_operations() > 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The call adopts the operation from the record it read before the completion.
    store.release.notify_one();
    let result = tokio::time::timeout(Duration::from_secs(5), call.result())
        .await
        .expect("the call ends with the recorded outcome, not waiting for it again");
    assert_eq!(result.unwrap(), "done");
    assert_eq!(call.operation_id(), id);
    assert_eq!(second.start_count(), 0, "nothing started again");
}

#[tokio::test]
async fn a_completion_recorded_for_a_request_that_went_away_still_wakes_its_task() {
    let store = Arc::new(Gated::default());
    let transport = Scripted::new("handler");
    transport.starts([Answer::Async("tok-2".into())]);
    let client = client(store.clone(), &transport);
    let handle = EchoClient::new(client.clone(), "echo")
        .echo("hello".into())
        .request_id("req-2")
        .start()
        .await
        .unwrap();
    let id = handle.operation_id();

    // The completion is recorded; then its request goes away (the sender died) before the
    // receiver woke the task.
    store.armed_completion.store(true, Ordering::SeqCst);
    let callback_id = id.to_string();
    let secret = callback_secret(&client, id).await;
    let receiving = client.deliver_completion(&callback_id, Some(&secret), done("tok-2"));
    tokio::select! {
        _ = receiving => panic!("the completion should be held after it was recorded"),
        () = store.paused.notified() => {}
    }
    store.release.notify_one();
    let result = tokio::time::timeout(Duration::from_secs(5), handle.result())
        .await
        .expect("the task is woken with the recorded completion");
    assert_eq!(result.unwrap(), "done");

    // Sent again (the sender did not see a 200): acknowledged, nothing changes.
    deliver(&client, id, done("tok-2")).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "done");
}
