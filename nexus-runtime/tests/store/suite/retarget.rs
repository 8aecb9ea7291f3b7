//! `retarget_async`: a repeated start moves an operation's completion to the callback it names.

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::store::{
    AsyncState, CompleteAsync, DeliveryState, RetargetAsync, Store, StoredCallback,
};

use super::Harness;
use super::fixtures::*;

const VISIBILITY: Duration = Duration::from_secs(60);

async fn retarget(store: &dyn Store, token: &str, to: &StoredCallback, now: u64) -> RetargetAsync {
    store.retarget_async(token, to, at(now)).await.unwrap()
}

/// A running operation's record takes the new callback; its completion is enqueued to it.
pub async fn retarget_running_operation<H: Harness>(h: &H) {
    let store = h.store();
    start_async(&*store, &async_record("t1", at(1), Some(callback(1)))).await;
    assert_eq!(
        retarget(&*store, "t1", &callback(2), 5).await,
        RetargetAsync::Updated
    );
    let op = store.get_async("t1").await.unwrap().unwrap();
    assert_eq!(
        (op.state, op.callback),
        (AsyncState::Running, Some(callback(2)))
    );
    assert_eq!(
        retarget(&*store, "t1", &callback(2), 6).await,
        RetargetAsync::Unchanged
    );
    // Same URL, other headers (a new callback token): a different callback.
    let mut headers_only = callback(2);
    headers_only
        .headers
        .insert("nexus-callback-token".into(), "second".into());
    assert_eq!(
        retarget(&*store, "t1", &headers_only, 7).await,
        RetargetAsync::Updated
    );
    let id = complete(&*store, "t1", 10).await;
    let d = delivery(&*store, id).await;
    assert_eq!(
        (d.url, d.headers, d.state, d.next_attempt_at),
        (
            headers_only.url,
            headers_only.headers,
            DeliveryState::Pending,
            at(10)
        )
    );

    // A caller that gave no callback at first gets one.
    start_async(&*store, &async_record("t2", at(1), None)).await;
    assert_eq!(
        retarget(&*store, "t2", &callback(3), 5).await,
        RetargetAsync::Updated
    );
    let id = complete(&*store, "t2", 10).await;
    assert_eq!(delivery(&*store, id).await.url, callback(3).url);
}

/// A finished operation's waiting delivery (due, in flight, or backing off) is redirected and
/// due at once, keeping its attempts; a failed attempt to the old callback then no longer
/// applies, while one that succeeded still counts.
pub async fn retarget_waiting_delivery<H: Harness>(h: &H) {
    let store = h.store();
    start_async(&*store, &async_record("t1", at(1), Some(callback(1)))).await;
    let id = complete(&*store, "t1", 10).await;

    // In flight to callback 1 (claimed, hidden until 70) when the start is repeated.
    let claimed = store
        .claim_due_deliveries(at(10), VISIBILITY, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let in_flight = claimed[0].clone();
    assert_eq!(
        retarget(&*store, "t1", &callback(2), 20).await,
        RetargetAsync::Redirected { delivery: id }
    );
    let d = delivery(&*store, id).await;
    assert_eq!(
        (&d.url, &d.headers, d.state, d.attempts, d.next_attempt_at),
        (
            &callback(2).url,
            &callback(2).headers,
            DeliveryState::Pending,
            0,
            at(20)
        )
    );
    assert_eq!(
        store.get_async("t1").await.unwrap().unwrap().callback,
        Some(callback(2)),
        "the record says where the completion goes"
    );
    // The attempt to callback 1 fails: neither delays nor kills the redirected delivery.
    assert!(
        !store
            .mark_retry(&in_flight, at(500), "connection refused")
            .await
            .unwrap()
    );
    assert!(!store.mark_dead(&in_flight, at(21), "404").await.unwrap());
    assert_eq!(delivery(&*store, id).await, d);

    // Sent to callback 2, which fails: it backs off.
    let due = store
        .claim_due_deliveries(at(20), VISIBILITY, 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|d| (d.id, &d.url)).collect::<Vec<_>>(),
        [(id, &callback(2).url)]
    );
    assert!(
        store
            .mark_retry(&due[0], at(900), "503: unavailable")
            .await
            .unwrap()
    );
    // Backing off when the start is repeated again: due at once, attempts kept.
    assert_eq!(
        retarget(&*store, "t1", &callback(3), 30).await,
        RetargetAsync::Redirected { delivery: id }
    );
    let d = delivery(&*store, id).await;
    assert_eq!(
        (
            &d.url,
            d.attempts,
            d.next_attempt_at,
            d.last_error.as_deref()
        ),
        (&callback(3).url, 1, at(30), Some("503: unavailable"))
    );
    assert_eq!(
        retarget(&*store, "t1", &callback(3), 31).await,
        RetargetAsync::Unchanged
    );
    assert_eq!(delivery(&*store, id).await, d, "unchanged: not due again");

    // The old attempt to callback 1 succeeded after all: accepted is done.
    assert!(store.mark_delivered(id, at(32)).await.unwrap());
    assert!(nothing_due(&*store, 1_000).await);
}

/// Delivered or dead deliveries, operations finished without a callback, and unknown tokens:
/// nothing changes.
pub async fn retarget_leaves_settled_operations_alone<H: Harness>(h: &H) {
    let store = h.store();
    start_async(
        &*store,
        &async_record("t-delivered", at(1), Some(callback(1))),
    )
    .await;
    let delivered = complete(&*store, "t-delivered", 10).await;
    assert!(store.mark_delivered(delivered, at(11)).await.unwrap());
    start_async(&*store, &async_record("t-dead", at(1), Some(callback(1)))).await;
    let dead = complete(&*store, "t-dead", 10).await;
    assert!(
        store
            .mark_dead(&delivery(&*store, dead).await, at(11), "gone")
            .await
            .unwrap()
    );
    start_async(&*store, &async_record("t-none", at(1), None)).await;
    assert_eq!(
        store
            .complete_async(&completion_failed("t-none"), at(10))
            .await
            .unwrap(),
        CompleteAsync::Applied { delivery: None }
    );
    let ops_before = [
        store.get_async("t-delivered").await.unwrap(),
        store.get_async("t-dead").await.unwrap(),
        store.get_async("t-none").await.unwrap(),
    ];
    let deliveries_before = [
        delivery(&*store, delivered).await,
        delivery(&*store, dead).await,
    ];

    for (token, state) in [
        ("t-delivered", AsyncState::Succeeded),
        ("t-dead", AsyncState::Succeeded),
        ("t-none", AsyncState::Failed),
    ] {
        assert_eq!(
            retarget(&*store, token, &callback(2), 20).await,
            RetargetAsync::Settled(state),
            "{token}"
        );
    }
    assert_eq!(
        retarget(&*store, "unknown", &callback(2), 20).await,
        RetargetAsync::UnknownOperation
    );
    assert_eq!(
        [
            store.get_async("t-delivered").await.unwrap(),
            store.get_async("t-dead").await.unwrap(),
            store.get_async("t-none").await.unwrap(),
        ],
        ops_before
    );
    assert_eq!(
        [
            delivery(&*store, delivered).await,
            delivery(&*store, dead).await,
        ],
        deliveries_before
    );
    assert!(nothing_due(&*store, 1_000).await);
}

/// Retargeting races completion (from another store handle): whichever comes first, every
/// completion ends up going to the new callback.
pub async fn retarget_racing_completion_never_loses_the_new_callback<H: Harness>(h: &H) {
    let handles: [Arc<dyn Store>; 2] = [h.store(), h.another_handle().await];
    const OPS: usize = 16;
    for n in 0..OPS {
        let record = async_record(&format!("t{n}"), at(1), Some(callback(1)));
        start_async(&*handles[0], &record).await;
    }
    let completer = {
        let store = handles[0].clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..OPS {
                ids.push(complete(&*store, &format!("t{n}"), 10).await);
                tokio::task::yield_now().await;
            }
            ids
        })
    };
    let retargeter = {
        let store = handles[1].clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..OPS {
                outcomes.push(retarget(&*store, &format!("t{n}"), &callback(2), 10).await);
                tokio::task::yield_now().await;
            }
            outcomes
        })
    };
    let ids = completer.await.unwrap();
    for outcome in retargeter.await.unwrap() {
        assert!(
            matches!(
                outcome,
                RetargetAsync::Updated | RetargetAsync::Redirected { .. }
            ),
            "{outcome:?}"
        );
    }
    for id in ids {
        let d = delivery(&*handles[0], id).await;
        assert_eq!(
            (d.url, d.headers, d.state),
            (callback(2).url, callback(2).headers, DeliveryState::Pending)
        );
    }
}
