//! Queue semantics over real loopback HTTP: while the handler's endpoint is down, callers keep
//! scheduling; operations wait with backoff, or blocked by the open circuit breaker (each attempt,
//! the last failure and the next attempt's time recorded), and proceed when the handler comes back
//! on the same port, within their schedule-to-close.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::client::{EndpointConfig, OperationState};
use nexus_runtime::error::TransportErrorKind;
use nexus_runtime::machinery::{BreakerConfig, RetryPolicy};
use nexus_runtime::server::CallbackListener;
use nexus_runtime::store::{self, CallerStore, MemoryStore};
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{CallError, Client};
use support::ledger::{Desk, LedgerClient, serve};
use support::{eventually, free_addr};

#[tokio::test]
async fn operations_wait_for_a_handler_that_is_down_and_proceed_when_it_is_back() {
    let handler_addr = free_addr();
    let store: Arc<dyn CallerStore> = Arc::new(MemoryStore::new());
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let client = Client::builder()
        .endpoint(
            "ledger",
            EndpointConfig::new(HttpTransport::new(format!("http://{handler_addr}")).unwrap())
                .retry(
                    RetryPolicy::default()
                        .initial_interval(Duration::from_millis(50))
                        .maximum_interval(Duration::from_millis(200)),
                )
                .breaker(BreakerConfig::default().open_duration(Duration::from_millis(300)))
                .schedule_to_close_timeout(Duration::from_secs(30)),
        )
        .callback_url(listener.callback_url())
        .store(store.clone())
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let ledger = LedgerClient::new(client.clone(), "ledger");

    // Nobody listens: every operation is scheduled, and backs off (the breaker opens after five
    // failures, then lets a probe through every 300 ms).
    let handles: Vec<_> = (0..5)
        .map(|i| {
            ledger
                .settle(format!("p-{i}"))
                .request_id(format!("queue-{i}"))
                .schedule()
                .unwrap()
        })
        .collect();
    for handle in &handles {
        let info = handle
            .wait_for(|i| {
                i.attempt >= 2
                    && matches!(
                        i.state,
                        OperationState::BackingOff | OperationState::Blocked
                    )
            })
            .await;
        assert!(matches!(
            info.last_failure.as_deref(),
            Some(CallError::Transport(e)) if e.kind == TransportErrorKind::Connect
        ));
        let id = handle.operation_id();
        eventually(
            Duration::from_secs(5),
            "the backoff is recorded",
            async || {
                let r = store.get(id).await.unwrap().unwrap();
                r.attempt >= 2
                    && matches!(
                        r.state,
                        store::OperationState::BackingOff | store::OperationState::Blocked
                    )
                    && r.next_attempt_at.is_some()
                    && r.last_failure.is_some()
            },
        )
        .await;
    }
    // Still accepting work while it is down.
    let late = ledger
        .settle("p-late".into())
        .request_id("queue-late")
        .schedule()
        .unwrap();

    // The handler comes up on the same address: everything proceeds.
    let desk = Desk::new(true);
    let _handler = serve(&desk, &handler_addr.to_string()).await;
    for (i, handle) in handles.iter().enumerate() {
        let result = tokio::time::timeout(Duration::from_secs(10), handle.result())
            .await
            .expect("completes once the handler is back");
        assert_eq!(result.unwrap(), format!("settled p-{i}"));
        let record = store.get(handle.operation_id()).await.unwrap().unwrap();
        assert_eq!(record.state, store::OperationState::Succeeded);
        assert!(record.attempt >= 3, "attempts: {}", record.attempt);
    }
    assert_eq!(late.result().await.unwrap(), "settled p-late");
    let mut seen = desk.seen();
    seen.sort();
    assert_eq!(
        seen,
        [
            "queue-0",
            "queue-1",
            "queue-2",
            "queue-3",
            "queue-4",
            "queue-late"
        ],
        "one start per request id reached the handler"
    );
}
