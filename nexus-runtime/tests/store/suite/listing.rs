//! Listing for operators: filters, order and keyset paging of caller operations, async
//! operations and deliveries; redelivery of a dead delivery.

use std::time::Duration;

use nexus_runtime::store::{
    AsyncQuery, AsyncState, CallerQuery, Cursor, DeliveryQuery, DeliveryState, OperationState,
    caller_cursor, delivery_cursor,
};

use super::Harness;
use super::fixtures::*;

/// The most recently scheduled operations, finished ones included, newest first.
pub async fn list_recent_operations_newest_first<H: Harness>(h: &H) {
    let store = h.store();
    insert_all(&*store, 1..=4).await;
    let mut done = store.get(op_id(3)).await.unwrap().unwrap();
    done.state = OperationState::Succeeded;
    done.closed_at = Some(at(50));
    assert!(store.update(&mut done).await.unwrap());
    let recent = store.list_recent_operations(3).await.unwrap();
    let ids: Vec<_> = recent.iter().map(|r| r.id).collect();
    assert_eq!(ids, [op_id(4), op_id(3), op_id(2)]);
    assert_eq!(recent[1], store.get(op_id(3)).await.unwrap().unwrap());
    assert_eq!(store.list_recent_operations(0).await.unwrap().len(), 4);
}

/// Pages through caller operations by state, endpoint and service, in order, with cursors.
pub async fn list_caller_operations_with_filters_and_paging<H: Harness>(h: &H) {
    let store = h.store();
    insert_all(&*store, 1..=5).await;
    // Operation 6 goes to another endpoint and service; 2 backs off; 3 is finished.
    let mut other = record(6, at(6));
    other.endpoint = "ledger".into();
    other.service = "ledger.v1".into();
    store.insert(&other).await.unwrap();
    let mut backing_off = store.get(op_id(2)).await.unwrap().unwrap();
    backing_off.state = OperationState::BackingOff;
    backing_off.attempt = 2;
    backing_off.last_failure = Some(Box::new(handler_failure()));
    backing_off.next_attempt_at = Some(at(100));
    assert!(store.update(&mut backing_off).await.unwrap());
    let mut done = store.get(op_id(3)).await.unwrap().unwrap();
    done.state = OperationState::Failed;
    done.closed_at = Some(at(50));
    assert!(store.update(&mut done).await.unwrap());

    let ids = |records: &[nexus_runtime::store::CallerRecord]| {
        records.iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let all = store
        .list_operations(&CallerQuery::default())
        .await
        .unwrap();
    assert_eq!(ids(&all), (1..=6).map(op_id).collect::<Vec<_>>());
    // The listing shows what a lookup shows.
    assert_eq!(all[1], store.get(op_id(2)).await.unwrap().unwrap());

    let pending = CallerQuery {
        states: vec![OperationState::Scheduled, OperationState::BackingOff],
        endpoint: Some("fraud-detection".into()),
        ..CallerQuery::default()
    };
    let page = store.list_operations(&pending).await.unwrap();
    assert_eq!(ids(&page), [op_id(1), op_id(2), op_id(4), op_id(5)]);
    assert_eq!(page[1].attempt, 2);
    assert_eq!(page[1].last_failure.as_deref(), Some(&handler_failure()));

    // Pages of two, each after the last one's cursor (through its text form).
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let query = CallerQuery {
            after: after.clone(),
            limit: 2,
            ..pending.clone()
        };
        let page = store.list_operations(&query).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        let cursor = caller_cursor(last.scheduled_at, last.id).encode();
        after = Some(Cursor::decode(&cursor).unwrap());
        seen.extend(ids(&page));
    }
    assert_eq!(seen, ids(&store.list_operations(&pending).await.unwrap()));

    let by_service = CallerQuery {
        service: Some("ledger.v1".into()),
        ..CallerQuery::default()
    };
    assert_eq!(
        ids(&store.list_operations(&by_service).await.unwrap()),
        [op_id(6)]
    );
    let failed = CallerQuery {
        states: vec![OperationState::Failed],
        ..CallerQuery::default()
    };
    assert_eq!(
        ids(&store.list_operations(&failed).await.unwrap()),
        [op_id(3)]
    );
}

/// Pages through async operations by state and service; the listing carries their links.
pub async fn list_async_operations_with_filters_and_paging<H: Harness>(h: &H) {
    let store = h.store();
    for (n, token) in ["a1", "a2", "a3", "a4"].into_iter().enumerate() {
        let mut op = async_record(token, at(n as u64 + 1), Some(callback(1)));
        if token == "a4" {
            op.service = "ledger.v1".into();
        }
        start_async(&*store, &op).await;
    }
    complete(&*store, "a2", 20).await;
    let tokens = |records: &[nexus_runtime::store::AsyncOperationRecord]| {
        records.iter().map(|r| r.token.clone()).collect::<Vec<_>>()
    };
    let running = AsyncQuery {
        states: vec![AsyncState::Running],
        ..AsyncQuery::default()
    };
    let page = store.list_async(&running).await.unwrap();
    assert_eq!(tokens(&page), ["a1", "a3", "a4"]);
    assert_eq!(page[0].links, links());
    assert_eq!(page[0], store.get_async("a1").await.unwrap().unwrap());
    let first = store
        .list_async(&AsyncQuery {
            limit: 1,
            ..running.clone()
        })
        .await
        .unwrap();
    let next = store
        .list_async(&AsyncQuery {
            after: Some(Cursor::new(first[0].started_at, first[0].token.clone())),
            ..running.clone()
        })
        .await
        .unwrap();
    assert_eq!(tokens(&next), ["a3", "a4"]);
    let ledger = AsyncQuery {
        service: Some("ledger.v1".into()),
        ..AsyncQuery::default()
    };
    assert_eq!(tokens(&store.list_async(&ledger).await.unwrap()), ["a4"]);
    assert_eq!(
        tokens(&store.list_async(&AsyncQuery::default()).await.unwrap()),
        ["a1", "a2", "a3", "a4"]
    );
}

/// Dead, failing and pending deliveries are listed; a dead one is redelivered once, due at once,
/// its attempts and error kept; nothing else is.
pub async fn list_deliveries_and_redeliver_a_dead_one<H: Harness>(h: &H) {
    let store = h.store();
    let mut ids = Vec::new();
    for (n, token) in ["d1", "d2", "d3"].into_iter().enumerate() {
        start_async(
            &*store,
            &async_record(token, at(n as u64 + 1), Some(callback(1))),
        )
        .await;
        ids.push(complete(&*store, token, 10 + n as u64).await);
    }
    // d1 dies, d2 fails once and waits for its retry, d3 waits for its first attempt.
    let claimed = store
        .claim_due_deliveries(at(20), Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(
        store
            .mark_dead(&claimed[0], at(21), "410 gone")
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_retry(&claimed[1], at(500), "connection refused")
            .await
            .unwrap()
    );
    let listed = |states: Vec<DeliveryState>, failed_only: bool| {
        let store = store.clone();
        async move {
            let query = DeliveryQuery {
                states,
                failed_only,
                ..DeliveryQuery::default()
            };
            let page = store.list_deliveries(&query).await.unwrap();
            page.iter().map(|d| d.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(vec![DeliveryState::Dead], false).await, [ids[0]]);
    assert_eq!(listed(Vec::new(), true).await, [ids[0], ids[1]]);
    assert_eq!(
        listed(vec![DeliveryState::Pending], false).await,
        [ids[1], ids[2]]
    );
    let after_first = DeliveryQuery {
        after: Some(delivery_cursor(at(10), ids[0])),
        limit: 1,
        ..DeliveryQuery::default()
    };
    let page = store.list_deliveries(&after_first).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, ids[1]);
    assert_eq!(page[0].last_error.as_deref(), Some("connection refused"));

    // Redelivery: only a dead delivery, once.
    assert!(!store.redeliver(ids[1], at(30)).await.unwrap());
    assert!(!store.redeliver(op_id(99), at(30)).await.unwrap());
    assert!(store.redeliver(ids[0], at(30)).await.unwrap());
    assert!(!store.redeliver(ids[0], at(30)).await.unwrap());
    let again = delivery(&*store, ids[0]).await;
    assert_eq!(again.state, DeliveryState::Pending);
    assert_eq!(again.next_attempt_at, at(30));
    assert_eq!(again.finished_at, None);
    assert_eq!(again.attempts, 1);
    assert_eq!(again.last_error.as_deref(), Some("410 gone"));
    let due = store
        .claim_due_deliveries(at(30), Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [ids[0]]);
    assert!(store.mark_delivered(ids[0], at(31)).await.unwrap());
}
