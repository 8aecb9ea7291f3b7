//! Caller-side cases: records, compare-and-set, completions, retention.

use std::time::Duration;

use nexus_runtime::codec::Content;
use nexus_runtime::store::{
    AppliedCompletion, CancelRequestOutcome, CompletionOutcome, InsertOutcome, Lease,
    OperationDeadlines, OperationState, StoreError,
};

use nexus_runtime::security::CallbackSecret;

use super::Harness;
use super::fixtures::*;

/// Every field of a record comes back as written; times keep whole microseconds.
pub async fn round_trip_of_every_field<H: Harness>(h: &H) {
    let store = h.store();
    let mut r = record(1, at(0) + Duration::from_nanos(1_234_567_891));
    r.input = Content {
        headers: [
            ("type".to_owned(), "application/x-thing".to_owned()),
            ("encoding".to_owned(), "gzip".to_owned()),
        ]
        .into(),
        data: vec![0u8, 1, 2, 255, 0, 128].into(),
    };
    r.options = serde_json::json!({
        "headers": {"x-tenant": "acme"},
        "links": [{"url": "https://x", "type": "t"}],
        "cancellationType": "waitCompleted",
        "retry": {"initialIntervalMs": 1000, "coefficient": 2.0, "maxAttempts": null},
        "scheduleToCloseTimeoutMs": 30000
    });
    r.state = OperationState::Started;
    r.version = 7;
    r.attempt = 3;
    r.next_attempt_at = Some(at(5) + Duration::from_nanos(999));
    r.last_failure = Some(Box::new(failure()));
    r.target = Some("https://fraud-2.internal:8443".into());
    r.token = Some("tok-é-1".into());
    r.start_links = links();
    r.result = Some(Content::empty());
    r.error = Some(Box::new(handler_failure()));
    r.completion_links = links().into_iter().rev().collect();
    r.cancel_requested_at = Some(at(6));
    r.started_at = Some(at(2));
    r.closed_at = None;
    r.deadlines = OperationDeadlines {
        schedule_to_close: Some(at(30)),
        schedule_to_start: Some(at(10)),
        start_to_close: Some(at(20) + Duration::from_nanos(1_500)),
    };
    r.lease = Some(Lease::new("owner-a", at(40)));
    r.callback_secret = Some(CallbackSecret::generate());
    assert_eq!(store.insert(&r).await.unwrap(), InsertOutcome::Inserted);

    let mut expected = r.clone();
    expected.scheduled_at = micros(r.scheduled_at);
    expected.next_attempt_at = Some(micros(at(5) + Duration::from_nanos(999)));
    expected.deadlines.start_to_close = Some(at(20) + Duration::from_micros(1));
    let got = store.get(r.id).await.unwrap().expect("the record");
    assert_eq!(got, expected);
    assert_eq!(got.scheduled_at, at(1) + Duration::from_micros(234_567));
    assert_eq!(
        store.find_by_request_id(&r.request_key()).await.unwrap(),
        Some(expected)
    );
}

/// A record with nothing optional set, and lookups that find nothing.
pub async fn minimal_record_and_lookups<H: Harness>(h: &H) {
    let store = h.store();
    let mut r = record(2, at(0));
    r.input = Content::empty();
    r.options = serde_json::Value::Null;
    store.insert(&r).await.unwrap();
    assert_eq!(store.get(r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.get(op_id(99)).await.unwrap(), None);
    let mut other = r.request_key();
    other.endpoint = "another-endpoint".into();
    assert_eq!(store.find_by_request_id(&other).await.unwrap(), None);
    other = r.request_key();
    other.operation = "another".into();
    assert_eq!(store.find_by_request_id(&other).await.unwrap(), None);
}

/// The same request key attaches to the existing operation; the same id is an error.
pub async fn insert_is_idempotent_by_request_id<H: Harness>(h: &H) {
    let store = h.store();
    let first = record(1, at(0));
    store.insert(&first).await.unwrap();
    let mut again = record(1, at(9));
    again.id = op_id(2);
    match store.insert(&again).await.unwrap() {
        InsertOutcome::Exists(existing) => assert_eq!(*existing, first),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(store.get(op_id(2)).await.unwrap(), None);

    let mut same_id = record(3, at(0));
    same_id.id = first.id;
    let err = store.insert(&same_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert_eq!(store.get(first.id).await.unwrap(), Some(first));
}

/// `update` applies on the current version only, bumps it, never leaves a terminal state, and
/// clears the lease when the operation finishes.
pub async fn update_is_compare_and_set<H: Harness>(h: &H) {
    let store = h.store();
    let mut r = record(1, at(0));
    r.lease = Some(Lease::new("owner-a", at(30)));
    store.insert(&r).await.unwrap();

    let stale = r.clone();
    r.state = OperationState::BackingOff;
    r.attempt = 1;
    r.next_attempt_at = Some(at(1));
    r.last_failure = Some(Box::new(failure()));
    assert!(store.update(&mut r).await.unwrap());
    assert_eq!(r.version, 1);
    assert_eq!(r.lease, Some(Lease::new("owner-a", at(30))), "kept");
    assert_eq!(store.get(r.id).await.unwrap(), Some(r.clone()));

    let mut late = stale.clone();
    late.state = OperationState::Failed;
    assert!(!store.update(&mut late).await.unwrap(), "stale version");
    assert_eq!(late.version, 0, "a refused update leaves the record alone");
    assert_eq!(store.get(r.id).await.unwrap(), Some(r.clone()));

    r.state = OperationState::Started;
    r.token = Some("tok-1".into());
    r.start_links = links();
    r.started_at = Some(at(2));
    r.deadlines.start_to_close = Some(at(60));
    assert!(store.update(&mut r).await.unwrap());
    r.state = OperationState::Succeeded;
    r.result = Some(json(r#"{"ok":true}"#));
    r.closed_at = Some(at(3));
    assert!(store.update(&mut r).await.unwrap());
    assert_eq!(r.version, 3);
    assert_eq!(r.lease, None, "finishing clears the lease");
    assert_eq!(store.get(r.id).await.unwrap(), Some(r.clone()));

    let mut after = r.clone();
    after.state = OperationState::Failed;
    assert!(
        !store.update(&mut after).await.unwrap(),
        "terminal is final"
    );
    let mut missing = record(9, at(0));
    assert!(!store.update(&mut missing).await.unwrap());
    assert_eq!(store.get(r.id).await.unwrap(), Some(r));
}

/// Unfinished operations, oldest first.
pub async fn list_unfinished_oldest_first<H: Harness>(h: &H) {
    let store = h.store();
    for (n, secs) in [(1, 30), (2, 10), (3, 20), (4, 5)] {
        store.insert(&record(n, at(secs))).await.unwrap();
    }
    let mut done = store.get(op_id(4)).await.unwrap().unwrap();
    done.state = OperationState::Canceled;
    done.closed_at = Some(at(40));
    assert!(store.update(&mut done).await.unwrap());
    let ids: Vec<_> = store
        .list_unfinished()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [op_id(2), op_id(3), op_id(1)]);
}

pub async fn request_cancel_rules<H: Harness>(h: &H) {
    let store = h.store();
    let mut r = record(1, at(0));
    store.insert(&r).await.unwrap();
    assert_eq!(
        store.request_cancel(r.id, at(5)).await.unwrap(),
        CancelRequestOutcome::Requested
    );
    let got = store.get(r.id).await.unwrap().unwrap();
    assert_eq!(got.cancel_requested_at, Some(at(5)));
    assert_eq!(got.version, 1);
    assert!(
        !store.update(&mut r).await.unwrap(),
        "the driver must reread"
    );
    assert_eq!(
        store.request_cancel(r.id, at(6)).await.unwrap(),
        CancelRequestOutcome::AlreadyRequested
    );
    let mut r = got;
    r.state = OperationState::Canceled;
    r.closed_at = Some(at(7));
    assert!(store.update(&mut r).await.unwrap());
    assert_eq!(
        store.request_cancel(r.id, at(8)).await.unwrap(),
        CancelRequestOutcome::AlreadyFinished
    );
    assert_eq!(
        store.request_cancel(op_id(9), at(8)).await.unwrap(),
        CancelRequestOutcome::UnknownOperation
    );
    assert_eq!(store.get(r.id).await.unwrap(), Some(r));
}

/// A completion that arrives before the start response was processed finishes the operation and
/// gives it its token; the driver's late `started` write then fails.
pub async fn completion_before_token<H: Harness>(h: &H) {
    let store = h.store();
    let mut r = record(1, at(0));
    r.lease = Some(Lease::new("owner-a", at(30)));
    r.attempt = 1;
    store.insert(&r).await.unwrap();
    let completion = completion_ok("tok-early");
    let outcome = store
        .record_completion(r.id, &completion, at(4))
        .await
        .unwrap();
    let CompletionOutcome::Applied(applied) = outcome else {
        panic!("expected Applied, got {outcome:?}");
    };
    assert_eq!(
        applied,
        AppliedCompletion {
            version: 1,
            token: Some("tok-early".into())
        }
    );
    let done = store.get(r.id).await.unwrap().expect("the record");
    assert_eq!(done.state, OperationState::Succeeded);
    assert_eq!(done.token.as_deref(), Some("tok-early"));
    assert_eq!(done.result, completion.outcome.clone().ok());
    assert_eq!(done.error, None);
    assert_eq!(done.completion_links, links());
    assert_eq!(done.closed_at, Some(at(4)));
    assert_eq!(done.lease, None);
    assert_eq!(done.version, 1);

    r.state = OperationState::Started;
    r.token = Some("tok-early".into());
    assert!(
        !store.update(&mut r).await.unwrap(),
        "the 201 came too late"
    );
    assert_eq!(store.get(r.id).await.unwrap(), Some(done));
}

/// The callback secret is fixed at insert: updates and completions keep it, and a record without
/// one (made before secrets existed) stays without.
pub async fn callback_secret_is_fixed_at_insert<H: Harness>(h: &H) {
    let store = h.store();
    let secret = CallbackSecret::generate();
    let mut r = record(1, at(0));
    r.callback_secret = Some(secret.clone());
    store.insert(&r).await.unwrap();
    let legacy = record(2, at(0));
    store.insert(&legacy).await.unwrap();
    r.state = OperationState::Started;
    r.token = Some("tok-1".into());
    r.callback_secret = Some(CallbackSecret::generate());
    assert!(store.update(&mut r).await.unwrap());
    let updated = store.get(r.id).await.unwrap().expect("the record");
    assert_eq!(
        updated.callback_secret.as_ref(),
        Some(&secret),
        "not written"
    );
    let outcome = store
        .record_completion(r.id, &completion_ok("tok-1"), at(3))
        .await
        .unwrap();
    let CompletionOutcome::Applied(applied) = outcome else {
        panic!("expected Applied, got {outcome:?}");
    };
    assert_eq!(applied.version, r.version + 1);
    let got = store.get(r.id).await.unwrap().expect("the record");
    assert_eq!(
        got.callback_secret.as_ref().map(CallbackSecret::expose),
        Some(secret.expose())
    );
    assert_eq!(
        store
            .get(legacy.id)
            .await
            .unwrap()
            .expect("legacy")
            .callback_secret,
        None
    );
}

/// Completions of a started operation: failed and canceled outcomes, an empty token, a token
/// that contradicts the start response.
pub async fn completion_after_start_and_token_mismatch<H: Harness>(h: &H) {
    let store = h.store();
    for (n, completion, state) in [
        (1, completion_failed("tok-1"), OperationState::Failed),
        (2, completion_canceled(""), OperationState::Canceled),
    ] {
        let mut r = record(n, at(0));
        store.insert(&r).await.unwrap();
        r.state = OperationState::Started;
        r.token = Some(format!("tok-{n}"));
        assert!(store.update(&mut r).await.unwrap());
        let outcome = store
            .record_completion(r.id, &completion, at(9))
            .await
            .unwrap();
        let CompletionOutcome::Applied(applied) = outcome else {
            panic!("expected Applied, got {outcome:?}");
        };
        assert_eq!(
            applied.token,
            Some(format!("tok-{n}")),
            "an empty token keeps the known one"
        );
        let done = store.get(r.id).await.unwrap().expect("the record");
        assert_eq!(applied.version, done.version);
        assert_eq!(done.state, state);
        assert_eq!(done.token, applied.token);
        assert_eq!(done.result, None);
        let sent = completion.outcome.as_ref().unwrap_err();
        assert_eq!(done.error.as_deref(), Some(&sent.to_failure()));
        let back = nexus_runtime::OperationError::from_failure(done.error.as_ref().unwrap());
        assert_eq!(back.as_ref(), Some(sent));
    }
    let mut r = record(3, at(0));
    store.insert(&r).await.unwrap();
    r.state = OperationState::Started;
    r.token = Some("tok-3".into());
    assert!(store.update(&mut r).await.unwrap());
    assert_eq!(
        store
            .record_completion(r.id, &completion_ok("tok-other"), at(9))
            .await
            .unwrap(),
        CompletionOutcome::TokenMismatch {
            expected: "tok-3".into()
        }
    );
    assert_eq!(store.get(r.id).await.unwrap(), Some(r));
}

pub async fn repeated_completion_is_already_finished<H: Harness>(h: &H) {
    let store = h.store();
    let r = record(1, at(0));
    store.insert(&r).await.unwrap();
    let first = store
        .record_completion(r.id, &completion_ok("tok"), at(4))
        .await
        .unwrap();
    assert!(matches!(first, CompletionOutcome::Applied(_)));
    let stored = store.get(r.id).await.unwrap();
    for completion in [completion_ok("tok"), completion_failed("tok")] {
        assert_eq!(
            store
                .record_completion(r.id, &completion, at(5))
                .await
                .unwrap(),
            CompletionOutcome::AlreadyFinished(OperationState::Succeeded)
        );
    }
    assert_eq!(store.get(r.id).await.unwrap(), stored, "unchanged");
}

/// A timeout recorded first wins over a late completion, and a completion recorded first wins
/// over a late timeout.
pub async fn completion_and_timeout_never_overwrite_each_other<H: Harness>(h: &H) {
    let store = h.store();
    let mut timed_out = record(1, at(0));
    store.insert(&timed_out).await.unwrap();
    timed_out.state = OperationState::TimedOut;
    timed_out.closed_at = Some(at(30));
    timed_out.error = Some(Box::new(nexus_runtime::Failure::new(
        "schedule-to-close timeout",
    )));
    assert!(store.update(&mut timed_out).await.unwrap());
    assert_eq!(
        store
            .record_completion(timed_out.id, &completion_ok("tok"), at(31))
            .await
            .unwrap(),
        CompletionOutcome::AlreadyFinished(OperationState::TimedOut)
    );
    assert_eq!(store.get(timed_out.id).await.unwrap(), Some(timed_out));

    let mut completed = record(2, at(0));
    store.insert(&completed).await.unwrap();
    let snapshot = completed.clone();
    store
        .record_completion(completed.id, &completion_ok("tok"), at(29))
        .await
        .unwrap();
    let done = store.get(completed.id).await.unwrap();
    completed.state = OperationState::TimedOut;
    assert!(!store.update(&mut completed).await.unwrap());
    let mut fresh = done.clone().unwrap();
    fresh.state = OperationState::TimedOut;
    assert!(
        !store.update(&mut fresh).await.unwrap(),
        "even on the latest version"
    );
    assert_eq!(store.get(snapshot.id).await.unwrap(), done);
}

pub async fn unknown_completion<H: Harness>(h: &H) {
    let store = h.store();
    assert_eq!(
        store
            .record_completion(op_id(42), &completion_ok("tok"), at(1))
            .await
            .unwrap(),
        CompletionOutcome::UnknownOperation
    );
    assert_eq!(store.get(op_id(42)).await.unwrap(), None);
}

/// Retention deletes finished operations closed before the cutoff, and only those.
pub async fn purge_finished_operations<H: Harness>(h: &H) {
    let store = h.store();
    insert_all(&*store, 1..=4).await;
    for (n, closed) in [(1, 10), (2, 20), (3, 30)] {
        let mut r = store.get(op_id(n)).await.unwrap().unwrap();
        r.state = OperationState::Succeeded;
        r.closed_at = Some(at(closed));
        assert!(store.update(&mut r).await.unwrap());
    }
    assert_eq!(store.purge_finished(at(20)).await.unwrap(), 1);
    assert_eq!(store.get(op_id(1)).await.unwrap(), None);
    assert!(
        store.get(op_id(2)).await.unwrap().is_some(),
        "closed at the cutoff"
    );
    assert_eq!(store.purge_finished(at(100)).await.unwrap(), 2);
    assert_eq!(store.purge_finished(at(100)).await.unwrap(), 0);
    assert!(
        store.get(op_id(4)).await.unwrap().is_some(),
        "unfinished is kept"
    );
    assert_eq!(
        store.find_by_request_id(&request_key(1)).await.unwrap(),
        None
    );
    assert_eq!(
        store.insert(&record(1, at(50))).await.unwrap(),
        InsertOutcome::Inserted,
        "a purged request id is free again"
    );
}
