//! Handler-side cases: deduplication of starts by request id, async operation records.

use std::sync::Arc;

use nexus_runtime::codec::Content;
use nexus_runtime::security::Principal;
use nexus_runtime::store::{
    BeginStart, CancelRequestOutcome, StartAnswer, StartClaim, StartKey, Store, StoreError,
};
use nexus_runtime::{HandlerError, OperationError};

use super::Harness;
use super::fixtures::*;

async fn claim(store: &dyn Store, request_id: &str, now: u64, until: u64) -> StartClaim {
    match store
        .begin_start(&start_key(request_id), at(now), at(until))
        .await
        .unwrap()
    {
        BeginStart::Claimed(claim) => claim,
        other => panic!("expected a claim on `{request_id}`, got {other:?}"),
    }
}

/// A retry gets the stored sync result; a retry while the first runs is in flight; other
/// request ids and other operations are independent.
pub async fn dedup_returns_the_sync_answer<H: Harness>(h: &H) {
    let store = h.store();
    let key = start_key("r1");
    let c = claim(&*store, "r1", 0, 10).await;
    assert_eq!(c.expires_at, at(10));
    assert_eq!(
        store.begin_start(&key, at(1), at(11)).await.unwrap(),
        BeginStart::InFlight {
            claim_expires_at: at(10)
        }
    );
    let answer = StartAnswer::Sync {
        output: json(r#"{"risk":"low"}"#),
        links: links(),
    };
    assert!(
        store
            .finish_start(&key, &c, &answer, None, at(2))
            .await
            .unwrap()
    );
    for now in [3, 10_000] {
        assert_eq!(
            store
                .begin_start(&key, at(now), at(now + 10))
                .await
                .unwrap(),
            BeginStart::Answered(answer.clone())
        );
    }
    assert!(
        !store
            .finish_start(&key, &c, &answer, None, at(4))
            .await
            .unwrap(),
        "answered once"
    );
    claim(&*store, "r2", 5, 15).await;
    let mut other_operation = key.clone();
    other_operation.operation = "checkTransaction".into();
    assert!(matches!(
        store
            .begin_start(&other_operation, at(5), at(15))
            .await
            .unwrap(),
        BeginStart::Claimed(_)
    ));

    let empty = StartAnswer::Sync {
        output: Content::empty(),
        links: Vec::new(),
    };
    let c = claim(&*store, "r-empty", 0, 10).await;
    assert!(
        store
            .finish_start(&start_key("r-empty"), &c, &empty, None, at(1))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .begin_start(&start_key("r-empty"), at(2), at(12))
            .await
            .unwrap(),
        BeginStart::Answered(empty)
    );
}

/// A retry of an async start gets the same token; the operation record is stored with it.
pub async fn dedup_returns_the_async_token<H: Harness>(h: &H) {
    let store = h.store();
    let op = async_record("tok-1", at(3), Some(callback(1)));
    let answer = start_async(&*store, &op).await;
    assert_eq!(
        store
            .begin_start(&start_key("req-tok-1"), at(4), at(14))
            .await
            .unwrap(),
        BeginStart::Answered(answer)
    );
    assert_eq!(store.get_async("tok-1").await.unwrap(), Some(op));
    assert_eq!(store.get_async("tok-2").await.unwrap(), None);

    let mut bare = async_record("tok-bare", at(5), None);
    bare.headers.clear();
    bare.links.clear();
    bare.resumable = false;
    bare.deadline = None;
    bare.lease = None;
    bare.input = Content::empty();
    start_async(&*store, &bare).await;
    assert_eq!(store.get_async("tok-bare").await.unwrap(), Some(bare));
}

/// The same request id from two principals is two start requests: each claims and answers its
/// own, neither sees the other's answer, and each operation records its principal (name and
/// kind, the anonymous one included).
pub async fn request_ids_are_scoped_by_principal<H: Harness>(h: &H) {
    let store = h.store();
    let mut named = async_record("tok-named", at(3), Some(callback(1)));
    named.request_id = "shared".into();
    let mut anonymous = async_record("tok-anon", at(4), Some(callback(2)));
    anonymous.request_id = "shared".into();
    anonymous.principal = Principal::anonymous();
    let named_answer = start_async(&*store, &named).await;
    let anonymous_answer = start_async(&*store, &anonymous).await;
    assert_ne!(named_answer, anonymous_answer);
    let key = |principal: &str| StartKey {
        principal: principal.to_owned(),
        ..start_key("shared")
    };
    let begin = |principal: &'static str| {
        let store = store.clone();
        let key = key(principal);
        async move { store.begin_start(&key, at(5), at(15)).await.unwrap() }
    };
    assert_eq!(begin("payments").await, BeginStart::Answered(named_answer));
    assert_eq!(begin("").await, BeginStart::Answered(anonymous_answer));
    assert_eq!(store.get_async("tok-named").await.unwrap(), Some(named));
    assert_eq!(store.get_async("tok-anon").await.unwrap(), Some(anonymous));

    // A third principal claims the same request id afresh; the claim is its own.
    let BeginStart::Claimed(claim) = begin("ledger").await else {
        panic!("a new principal's request id must be new");
    };
    assert!(!store.abandon_start(&key("payments"), &claim).await.unwrap());
    let sync = StartAnswer::Sync {
        output: json("1"),
        links: Vec::new(),
    };
    assert!(
        !store
            .finish_start(&key(""), &claim, &sync, None, at(6))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_start(&key("ledger"), &claim, &sync, None, at(6))
            .await
            .unwrap()
    );
    assert_eq!(begin("ledger").await, BeginStart::Answered(sync));
}

/// A start that failed for good gets the same Failure again.
pub async fn dedup_returns_the_recorded_error<H: Harness>(h: &H) {
    let store = h.store();
    let operation_error = OperationError::failed("card declined").with_cause(failure());
    for (request_id, failure) in [
        ("r-op", operation_error.to_failure()),
        ("r-handler", handler_failure()),
    ] {
        let c = claim(&*store, request_id, 0, 10).await;
        let answer = StartAnswer::Failed(failure);
        let key = start_key(request_id);
        assert!(
            store
                .finish_start(&key, &c, &answer, None, at(1))
                .await
                .unwrap()
        );
        assert_eq!(
            store.begin_start(&key, at(2), at(12)).await.unwrap(),
            BeginStart::Answered(answer)
        );
    }
    let BeginStart::Answered(StartAnswer::Failed(f)) = store
        .begin_start(&start_key("r-handler"), at(3), at(13))
        .await
        .unwrap()
    else {
        panic!("expected the stored failure");
    };
    assert_eq!(
        HandlerError::from_failure(&f),
        Some(HandlerError::bad_request("`amount` must be positive"))
    );
    let BeginStart::Answered(StartAnswer::Failed(f)) = store
        .begin_start(&start_key("r-op"), at(3), at(13))
        .await
        .unwrap()
    else {
        panic!("expected the stored failure");
    };
    assert_eq!(OperationError::from_failure(&f), Some(operation_error));
}

/// A claim whose holder died is taken over once expired; the old holder can no longer answer.
/// An abandoned claim lets the next request run the handler again.
pub async fn expired_claims_are_taken_over_and_abandoned_ones_rerun<H: Harness>(h: &H) {
    let store = h.store();
    let key = start_key("r1");
    let c1 = claim(&*store, "r1", 0, 10).await;
    assert!(matches!(
        store.begin_start(&key, at(9), at(19)).await.unwrap(),
        BeginStart::InFlight { .. }
    ));
    let c2 = claim(&*store, "r1", 10, 20).await;
    assert_ne!(c1.id, c2.id);
    let answer = StartAnswer::Sync {
        output: json("1"),
        links: Vec::new(),
    };
    assert!(
        !store
            .finish_start(&key, &c1, &answer, None, at(11))
            .await
            .unwrap()
    );
    assert!(!store.abandon_start(&key, &c1).await.unwrap());
    assert!(
        store
            .finish_start(&key, &c2, &answer, None, at(11))
            .await
            .unwrap()
    );
    assert!(!store.abandon_start(&key, &c2).await.unwrap(), "answered");

    let key = start_key("r2");
    let c3 = claim(&*store, "r2", 0, 10).await;
    assert!(store.abandon_start(&key, &c3).await.unwrap());
    let c4 = claim(&*store, "r2", 1, 11).await;
    assert_ne!(c3.id, c4.id);
    assert!(!store.abandon_start(&key, &c3).await.unwrap());
    assert!(matches!(
        store.begin_start(&key, at(2), at(12)).await.unwrap(),
        BeginStart::InFlight { .. }
    ));
}

/// An async answer goes with its record and nothing else; a token in use fails the whole step.
pub async fn finish_start_checks_its_arguments_and_is_atomic<H: Harness>(h: &H) {
    let store = h.store();
    let key = start_key("r1");
    let c = claim(&*store, "r1", 0, 10).await;
    let op_x = async_record("x", at(0), None);
    let op_y = async_record("y", at(0), None);
    let async_x = StartAnswer::Async {
        token: "x".into(),
        links: Vec::new(),
    };
    let sync = StartAnswer::Sync {
        output: json("1"),
        links: Vec::new(),
    };
    for (answer, op) in [
        (&async_x, None),
        (&sync, Some(&op_x)),
        (&async_x, Some(&op_y)),
    ] {
        let err = store
            .finish_start(&key, &c, answer, op, at(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    assert!(matches!(
        store.begin_start(&key, at(1), at(11)).await.unwrap(),
        BeginStart::InFlight { .. }
    ));

    let first = async_record("dup", at(0), None);
    start_async(&*store, &first).await;
    let mut second = async_record("dup", at(1), None);
    second.request_id = "r1".into();
    let answer = StartAnswer::Async {
        token: "dup".into(),
        links: Vec::new(),
    };
    let err = store
        .finish_start(&key, &c, &answer, Some(&second), at(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert!(
        matches!(
            store.begin_start(&key, at(2), at(12)).await.unwrap(),
            BeginStart::InFlight { .. }
        ),
        "the answer was rolled back with the failed insert"
    );
    assert_eq!(store.get_async("dup").await.unwrap(), Some(first));
    assert!(
        store
            .finish_start(&key, &c, &sync, None, at(3))
            .await
            .unwrap()
    );
}

/// Concurrent first requests with one request id (from two handles): exactly one runs.
pub async fn concurrent_begin_start_runs_once<H: Harness>(h: &H) {
    let handles: [Arc<dyn Store>; 2] = [h.store(), h.another_handle().await];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = handles[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            store
                .begin_start(&start_key("same"), at(0), at(10))
                .await
                .unwrap()
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            BeginStart::Claimed(_) => claimed += 1,
            BeginStart::InFlight { claim_expires_at } => assert_eq!(claim_expires_at, at(10)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
}

pub async fn request_cancel_async_rules<H: Harness>(h: &H) {
    let store = h.store();
    start_async(&*store, &async_record("t", at(0), None)).await;
    assert_eq!(
        store.request_cancel_async("t", at(5)).await.unwrap(),
        CancelRequestOutcome::Requested
    );
    assert_eq!(
        store
            .get_async("t")
            .await
            .unwrap()
            .unwrap()
            .cancel_requested_at,
        Some(at(5))
    );
    assert_eq!(
        store.request_cancel_async("t", at(6)).await.unwrap(),
        CancelRequestOutcome::AlreadyRequested
    );
    store
        .complete_async(&completion_canceled("t"), at(7))
        .await
        .unwrap();
    assert_eq!(
        store.request_cancel_async("t", at(8)).await.unwrap(),
        CancelRequestOutcome::AlreadyFinished
    );
    assert_eq!(
        store.request_cancel_async("nope", at(8)).await.unwrap(),
        CancelRequestOutcome::UnknownOperation
    );
}
