//! The completion outbox, retention, and what survives a restart.

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::completion::Completion;
use nexus_runtime::store::{
    AsyncState, BeginStart, CompleteAsync, Delivery, DeliveryId, DeliveryState, HandlerPurge,
    OperationState, StartAnswer, Store,
};

use super::Harness;
use super::fixtures::*;

const VISIBILITY: Duration = Duration::from_secs(60);

/// Starts async operation `token` (with a callback) at `at(started)` and completes it at
/// `at(completed)`; returns its delivery.
async fn delivered_op(store: &dyn Store, token: &str, started: u64, completed: u64) -> DeliveryId {
    start_async(store, &async_record(token, at(started), Some(callback(7)))).await;
    complete(store, token, completed).await
}

fn ids(deliveries: &[Delivery]) -> Vec<DeliveryId> {
    deliveries.iter().map(|d| d.id).collect()
}

/// Completing an operation finishes it and enqueues its delivery together; a second completion
/// changes nothing and enqueues nothing.
pub async fn complete_async_enqueues_in_the_same_step<H: Harness>(h: &H) {
    let store = h.store();
    let id = delivered_op(&*store, "t1", 1, 10).await;
    let op = store.get_async("t1").await.unwrap().unwrap();
    assert_eq!(op.state, AsyncState::Succeeded);
    assert_eq!(op.closed_at, Some(at(10)));
    assert_eq!(op.lease, None);
    let mut completion = completion_ok("t1");
    completion.start_time = completion.start_time.map(micros);
    assert_eq!(
        store.get_delivery(id).await.unwrap(),
        Some(Delivery {
            id,
            url: callback(7).url,
            headers: callback(7).headers,
            completion,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: at(10),
            last_error: None,
            created_at: at(10),
            finished_at: None,
        })
    );
    assert_eq!(
        store
            .complete_async(&completion_failed("t1"), at(11))
            .await
            .unwrap(),
        CompleteAsync::AlreadyFinished(AsyncState::Succeeded)
    );
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(11), VISIBILITY, 10)
            .await
            .unwrap()),
        [id]
    );
    assert_eq!(
        store
            .complete_async(&completion_ok("unknown"), at(11))
            .await
            .unwrap(),
        CompleteAsync::UnknownOperation
    );

    start_async(&*store, &async_record("t2", at(1), None)).await;
    assert_eq!(
        store
            .complete_async(&completion_failed("t2"), at(12))
            .await
            .unwrap(),
        CompleteAsync::Applied { delivery: None },
        "no callback, nothing to deliver"
    );
    assert_eq!(
        store.get_async("t2").await.unwrap().unwrap().state,
        AsyncState::Failed
    );
    start_async(&*store, &async_record("t3", at(1), Some(callback(3)))).await;
    let CompleteAsync::Applied { delivery: Some(d3) } = store
        .complete_async(&completion_canceled("t3"), at(13))
        .await
        .unwrap()
    else {
        panic!("expected a delivery");
    };
    assert_eq!(
        store.get_async("t3").await.unwrap().unwrap().state,
        AsyncState::Canceled
    );
    let delivery = store.get_delivery(d3).await.unwrap().unwrap();
    assert_eq!(delivery.completion, completion_canceled("t3"));
    assert_eq!(delivery.completion.state(), "canceled");
}

/// Due deliveries come oldest first and are hidden while being sent; retries count attempts and
/// keep the error; delivered ones are done.
pub async fn due_listing_and_retry_bookkeeping<H: Harness>(h: &H) {
    let store = h.store();
    let d1 = delivered_op(&*store, "t1", 0, 10).await;
    let d2 = delivered_op(&*store, "t2", 0, 20).await;
    let d3 = delivered_op(&*store, "t3", 0, 30).await;

    let due = store
        .claim_due_deliveries(at(25), VISIBILITY, 10)
        .await
        .unwrap();
    assert_eq!(ids(&due), [d1, d2]);
    assert!(due.iter().all(|d| d.next_attempt_at == at(85)));
    assert!(
        store
            .claim_due_deliveries(at(25), VISIBILITY, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(30), VISIBILITY, 10)
            .await
            .unwrap()),
        [d3]
    );
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(85), VISIBILITY, 1)
            .await
            .unwrap()),
        [d1],
        "the limit takes the oldest"
    );

    assert!(
        store
            .mark_retry(&delivery(&*store, d1).await, at(200), "503: unavailable")
            .await
            .unwrap()
    );
    let d = store.get_delivery(d1).await.unwrap().unwrap();
    assert_eq!(
        (
            d.state,
            d.attempts,
            d.next_attempt_at,
            d.last_error.as_deref()
        ),
        (DeliveryState::Pending, 1, at(200), Some("503: unavailable"))
    );
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(199), VISIBILITY, 10)
            .await
            .unwrap()),
        [d2, d3]
    );
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(200), VISIBILITY, 10)
            .await
            .unwrap()),
        [d1]
    );
    assert!(store.mark_delivered(d1, at(201)).await.unwrap());
    let d = store.get_delivery(d1).await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.attempts, d.finished_at, d.last_error.as_deref()),
        (
            DeliveryState::Delivered,
            2,
            Some(at(201)),
            Some("503: unavailable")
        )
    );
    assert!(!store.mark_delivered(d1, at(202)).await.unwrap());
    assert!(
        !store
            .mark_retry(&delivery(&*store, d1).await, at(300), "x")
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_dead(&delivery(&*store, d1).await, at(300), "x")
            .await
            .unwrap()
    );
    assert_eq!(store.get_delivery(d1).await.unwrap(), Some(d));
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(10_000), VISIBILITY, 10)
            .await
            .unwrap()),
        [d2, d3]
    );
    let unknown = uuid::Uuid::from_u128(7);
    assert!(!store.mark_delivered(unknown, at(1)).await.unwrap());
    assert_eq!(store.get_delivery(unknown).await.unwrap(), None);
}

/// Dead deliveries leave the queue and are listed, most recent first.
pub async fn dead_letters<H: Harness>(h: &H) {
    let store = h.store();
    let d1 = delivered_op(&*store, "t1", 0, 10).await;
    let d2 = delivered_op(&*store, "t2", 0, 20).await;
    let d3 = delivered_op(&*store, "t3", 0, 30).await;
    assert!(
        store
            .mark_dead(
                &delivery(&*store, d1).await,
                at(40),
                "404: no such operation"
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_retry(&delivery(&*store, d2).await, at(45), "timeout")
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_dead(&delivery(&*store, d2).await, at(50), "expired after 24h")
            .await
            .unwrap()
    );
    assert_eq!(
        ids(&store.list_dead_deliveries(10).await.unwrap()),
        [d2, d1]
    );
    assert_eq!(ids(&store.list_dead_deliveries(1).await.unwrap()), [d2]);
    let d = store.get_delivery(d2).await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.attempts, d.finished_at, d.last_error.as_deref()),
        (
            DeliveryState::Dead,
            2,
            Some(at(50)),
            Some("expired after 24h")
        )
    );
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(10_000), VISIBILITY, 10)
            .await
            .unwrap()),
        [d3]
    );
}

pub async fn concurrent_delivery_claims_never_share<H: Harness>(h: &H) {
    let handles: [Arc<dyn Store>; 2] = [h.store(), h.another_handle().await];
    for n in 0..20u64 {
        delivered_op(&*handles[n as usize % 2], &format!("t{n}"), 0, n).await;
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = handles[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            // Bounded: a store that hands out claimed work again must fail, not hang.
            for _ in 0..100 {
                let batch = store
                    .claim_due_deliveries(at(100), VISIBILITY, 2)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(ids(&batch));
                tokio::task::yield_now().await;
            }
            panic!("claims never ran out: the store hands out claimed work again");
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all.len(), 20, "{all:?}");
    assert!(all_distinct(&all));
}

/// Retention deletes answered starts, expired claims, finished operations and finished
/// deliveries from before the cutoff, and nothing else: never a pending delivery.
pub async fn purge_handled_records<H: Harness>(h: &H) {
    let store = h.store();
    let sync = StartAnswer::Sync {
        output: json("1"),
        links: Vec::new(),
    };
    for (request_id, now, answered) in [("r-old", 10, true), ("r-new", 100, true)] {
        let key = start_key(request_id);
        let BeginStart::Claimed(c) = store.begin_start(&key, at(now), at(now + 5)).await.unwrap()
        else {
            panic!("not claimed");
        };
        if answered {
            assert!(
                store
                    .finish_start(&key, &c, &sync, None, at(now))
                    .await
                    .unwrap()
            );
        }
    }
    store
        .begin_start(&start_key("r-stale"), at(0), at(20))
        .await
        .unwrap();
    store
        .begin_start(&start_key("r-live"), at(0), at(1000))
        .await
        .unwrap();
    let old = delivered_op(&*store, "t-old", 1, 10).await;
    assert!(store.mark_delivered(old, at(15)).await.unwrap());
    let new = delivered_op(&*store, "t-new", 60, 100).await;
    assert!(
        store
            .mark_dead(&delivery(&*store, new).await, at(110), "gone")
            .await
            .unwrap()
    );
    let pending = delivered_op(&*store, "t-pend", 60, 70).await;
    start_async(&*store, &async_record("t-running", at(60), None)).await;

    assert_eq!(
        store.purge_handled(at(50)).await.unwrap(),
        HandlerPurge {
            starts: 3,
            operations: 1,
        },
        "r-old, r-stale, req-t-old; t-old"
    );
    assert_eq!(store.purge_deliveries(at(50)).await.unwrap(), 1, "t-old's");
    assert!(matches!(
        store
            .begin_start(&start_key("r-old"), at(60), at(70))
            .await
            .unwrap(),
        BeginStart::Claimed(_)
    ));
    assert!(matches!(
        store
            .begin_start(&start_key("r-new"), at(60), at(70))
            .await
            .unwrap(),
        BeginStart::Answered(_)
    ));
    assert_eq!(store.get_async("t-old").await.unwrap(), None);
    assert_eq!(store.get_delivery(old).await.unwrap(), None);
    assert!(store.get_delivery(new).await.unwrap().is_some());

    assert_eq!(
        store.purge_handled(at(1_000_000)).await.unwrap(),
        HandlerPurge {
            starts: 6,
            operations: 2,
        },
        "r-new, r-live, r-old (claim), req-t-new, req-t-pend, req-t-running; t-new, t-pend"
    );
    assert_eq!(
        store.purge_deliveries(at(1_000_000)).await.unwrap(),
        1,
        "t-new's"
    );
    assert_eq!(store.purge_deliveries(at(1_000_000)).await.unwrap(), 0);
    assert!(store.get_async("t-running").await.unwrap().is_some());
    assert_eq!(
        ids(&store
            .claim_due_deliveries(at(1_000_000), VISIBILITY, 10)
            .await
            .unwrap()),
        [pending],
        "a pending delivery is never purged"
    );
}

/// Closing the store and opening it again (a restart) keeps every record.
pub async fn reopening_keeps_everything<H: Harness>(h: &H) {
    let store = h.store();
    let mut caller = record(1, at(0));
    store.insert(&caller).await.unwrap();
    caller.state = OperationState::Started;
    caller.token = Some("tok-1".into());
    caller.start_links = links();
    assert!(store.update(&mut caller).await.unwrap());
    let finished = record(2, at(1));
    store.insert(&finished).await.unwrap();
    store
        .record_completion(finished.id, &completion_failed("t"), at(2))
        .await
        .unwrap();
    let finished = store.get(finished.id).await.unwrap();

    let key = start_key("r-sync");
    let BeginStart::Claimed(c) = store.begin_start(&key, at(0), at(10)).await.unwrap() else {
        panic!("not claimed");
    };
    let answer = StartAnswer::Sync {
        output: json(r#"{"risk":"high"}"#),
        links: links(),
    };
    assert!(
        store
            .finish_start(&key, &c, &answer, None, at(1))
            .await
            .unwrap()
    );
    let running = async_record("t-running", at(3), Some(callback(1)));
    start_async(&*store, &running).await;
    let pending = delivered_op(&*store, "t-pending", 0, 5).await;
    let dead = delivered_op(&*store, "t-dead", 0, 6).await;
    assert!(
        store
            .mark_dead(&delivery(&*store, dead).await, at(7), "gone")
            .await
            .unwrap()
    );
    let pending_before: Option<Delivery> = store.get_delivery(pending).await.unwrap();
    let dead_before = store.get_delivery(dead).await.unwrap();
    drop(store);

    let Some(store) = h.reopen().await else {
        eprintln!("skipped: this store does not outlive its process");
        return;
    };
    assert_eq!(store.get(caller.id).await.unwrap(), Some(caller.clone()));
    assert_eq!(store.get(op_id(2)).await.unwrap(), finished);
    assert_eq!(
        store
            .list_unfinished()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [caller.id]
    );
    assert_eq!(
        store.begin_start(&key, at(20), at(30)).await.unwrap(),
        BeginStart::Answered(answer)
    );
    assert_eq!(
        store.get_async("t-running").await.unwrap(),
        Some(running.clone())
    );
    assert_eq!(store.list_unfinished_async().await.unwrap(), [running]);
    assert_eq!(store.get_delivery(pending).await.unwrap(), pending_before);
    assert_eq!(
        store.list_dead_deliveries(10).await.unwrap(),
        [dead_before.unwrap()]
    );
    let due = store
        .claim_due_deliveries(at(20), VISIBILITY, 10)
        .await
        .unwrap();
    assert_eq!(ids(&due), [pending]);
    let completion: &Completion = &due[0].completion;
    assert_eq!(completion.token, "t-pending");
}
