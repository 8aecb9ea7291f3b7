//! Records and times the cases build on. Times are fixed, so every run is the same.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nexus_runtime::codec::Content;
use nexus_runtime::completion::Completion;
use nexus_runtime::error::{Failure, OperationError};
use nexus_runtime::security::{Principal, PrincipalKind};
use nexus_runtime::store::{
    AsyncOperationRecord, AsyncState, CallerRecord, Delivery, DeliveryId, Lease, OperationId,
    RequestKey, StartKey, Store, StoredCallback,
};
use nexus_runtime::{HandlerError, Link};

/// `secs` seconds after a fixed origin.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// `millis` milliseconds after the fixed origin.
pub fn at_ms(millis: u64) -> SystemTime {
    at(0) + Duration::from_millis(millis)
}

/// A deterministic operation id.
pub fn op_id(n: u128) -> OperationId {
    OperationId::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n)
}

pub fn request_key(n: u128) -> RequestKey {
    RequestKey {
        endpoint: "fraud-detection".into(),
        service: "fraud.v1".into(),
        operation: "checkTransaction".into(),
        request_id: format!("req-{n}"),
    }
}

pub fn json(text: &str) -> Content {
    Content::new("application/json", text.as_bytes().to_vec())
}

/// A new operation `n`, scheduled at `scheduled_at`.
pub fn record(n: u128, scheduled_at: SystemTime) -> CallerRecord {
    CallerRecord::new(
        op_id(n),
        request_key(n),
        json(&format!(r#"{{"amount":{n}}}"#)),
        serde_json::json!({"scheduleToCloseTimeoutMs": 30000}),
        scheduled_at,
    )
}

/// Inserts operations `ns`, operation `n` scheduled at `at(n)`.
pub async fn insert_all(
    store: &dyn nexus_runtime::store::Store,
    ns: impl IntoIterator<Item = u128>,
) {
    for n in ns {
        let outcome = store.insert(&record(n, at(n as u64))).await.unwrap();
        assert_eq!(outcome, nexus_runtime::store::InsertOutcome::Inserted);
    }
}

pub fn failure() -> Failure {
    Failure::new("card declined")
        .with_stack_trace("at issuer\nat network")
        .with_metadata("type", "payments.Declined")
        .with_details(serde_json::json!({"code": 51, "nested": [1, {"a": null}]}))
        .with_cause(Failure::new("issuer said no"))
}

pub fn handler_failure() -> Failure {
    HandlerError::bad_request("`amount` must be positive").to_failure()
}

pub fn links() -> Vec<Link> {
    vec![
        Link::new(
            "temporal:///namespaces/ns/workflows/wf/run/events?eventType=1",
            "temporal.api.common.v1.Link.WorkflowEvent",
        ),
        Link::new("https://example.com/a?b=c%20d", "x.y"),
    ]
}

/// The principal the fixtures' operations are started by.
pub fn principal() -> Principal {
    Principal::new("payments", PrincipalKind::Certificate)
}

pub fn start_key(request_id: &str) -> StartKey {
    StartKey {
        principal: principal().name().to_owned(),
        service: "fraud.v1".into(),
        operation: "investigate".into(),
        request_id: request_id.into(),
    }
}

pub fn callback(n: u32) -> StoredCallback {
    StoredCallback {
        url: format!("http://127.0.0.1:9/nexus/callback/{n}?x=1"),
        headers: BTreeMap::from([("authorization".to_owned(), format!("Bearer {n}"))]),
    }
}

/// A running async operation with `token`, started at `started_at`.
pub fn async_record(
    token: &str,
    started_at: SystemTime,
    callback: Option<StoredCallback>,
) -> AsyncOperationRecord {
    AsyncOperationRecord {
        token: token.into(),
        service: "fraud.v1".into(),
        operation: "investigate".into(),
        request_id: format!("req-{token}"),
        principal: principal(),
        input: json(r#"{"case":"c-1"}"#),
        headers: BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]),
        links: links(),
        callback,
        state: AsyncState::Running,
        resumable: true,
        cancel_requested_at: None,
        deadline: Some(started_at + Duration::from_secs(3600)),
        started_at,
        closed_at: None,
        lease: Some(Lease::new("owner-a", started_at + Duration::from_secs(30))),
    }
}

pub fn completion_ok(token: &str) -> Completion {
    Completion {
        token: token.into(),
        outcome: Ok(Content::new(
            "application/octet-stream",
            vec![0u8, 159, 146, 150, 255],
        )),
        links: links(),
        start_time: Some(at(1) + Duration::from_nanos(123_456_789)),
        close_time: Some(at(2)),
    }
}

pub fn completion_failed(token: &str) -> Completion {
    Completion {
        token: token.into(),
        outcome: Err(OperationError::failed("investigation failed").with_cause(failure())),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    }
}

pub fn completion_canceled(token: &str) -> Completion {
    Completion {
        token: token.into(),
        outcome: Err(OperationError::canceled("stopped by the caller")),
        links: Vec::new(),
        start_time: None,
        close_time: Some(at(3)),
    }
}

/// `t` truncated to whole microseconds, as every store keeps times.
pub fn micros(t: SystemTime) -> SystemTime {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64)
}

/// Records async operation `token` through the dedup path, as a dispatcher does: claims request
/// `req-{token}`, then answers it with the token and the operation record.
pub async fn start_async(
    store: &dyn nexus_runtime::store::Store,
    op: &AsyncOperationRecord,
) -> nexus_runtime::store::StartAnswer {
    use nexus_runtime::store::{BeginStart, StartAnswer};
    let key = StartKey {
        principal: op.principal.name().to_owned(),
        ..start_key(&op.request_id)
    };
    let BeginStart::Claimed(claim) = store
        .begin_start(&key, op.started_at, at(10_000))
        .await
        .unwrap()
    else {
        panic!("request `{}` was not new", op.request_id);
    };
    let answer = StartAnswer::Async {
        token: op.token.clone(),
        links: links(),
    };
    assert!(
        store
            .finish_start(&key, &claim, &answer, Some(op), op.started_at)
            .await
            .unwrap()
    );
    answer
}

/// Completes `token` successfully at `at(now)`; returns the delivery it enqueued.
pub async fn complete(store: &dyn Store, token: &str, now: u64) -> DeliveryId {
    match store
        .complete_async(&completion_ok(token), at(now))
        .await
        .unwrap()
    {
        nexus_runtime::store::CompleteAsync::Applied { delivery: Some(id) } => id,
        other => panic!("expected an enqueued delivery, got {other:?}"),
    }
}

/// Whether no delivery is due at `at(now)` (claiming nothing).
pub async fn nothing_due(store: &dyn Store, now: u64) -> bool {
    store
        .claim_due_deliveries(at(now), Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty()
}

/// Delivery `id` as stored now (as a sender that claimed it holds it).
pub async fn delivery(store: &dyn Store, id: DeliveryId) -> Delivery {
    store.get_delivery(id).await.unwrap().unwrap()
}

/// Whether `ids` has no repeats.
pub fn all_distinct<T: Ord + Clone>(ids: &[T]) -> bool {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.windows(2).all(|w| w[0] != w[1])
}
