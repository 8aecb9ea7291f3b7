//! A process that both calls and handles, with known operations in every state the admin page
//! shows, and its admin router on a loopback port.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::admin::Admin;
use nexus_runtime::client::{EndpointConfig, OperationHandle, OperationState};
use nexus_runtime::codec::Content;
use nexus_runtime::completion::Completion;
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::machinery::RetryPolicy;
use nexus_runtime::security::{BearerAuthenticator, Principal, StaticTokens};
use nexus_runtime::server::ServerHandle;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::{
    AsyncOperationRecord, AsyncState, BeginStart, CompleteAsync, DeliveryId, HandlerStore, Lease,
    MemoryStore, OutboxStore, StartAnswer, StartKey, StoredCallback,
};
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{
    Client, HandlerError, Link, OperationContext, OperationError, OperationResult, clock,
    nexus_service,
};

pub const TOKEN: &str = "admin-token-for-tests";

/// What a hostile caller may put in the records the page shows.
pub const HOSTILE: &str = "<img src=x onerror=\"document.title='pwned'\">";

/// Waits, or fails for a while.
#[nexus_service(name = "waits.v1")]
pub trait Waits {
    /// Runs until canceled.
    async fn wait(&self, ctx: OperationContext, input: u32) -> OperationResult<u32>;
    /// Fails with a retryable error.
    async fn flaky(&self, ctx: OperationContext, input: u32) -> OperationResult<u32>;
}

struct Waiter;

impl Waits for Waiter {
    async fn wait(&self, ctx: OperationContext, _input: u32) -> OperationResult<u32> {
        ctx.add_link(Link::new("https://handler.example/runs/1", "handler.Run"));
        ctx.start_async(move |work| async move {
            work.cancelled().await;
            Err(OperationError::canceled("stopped"))
        })
    }
    async fn flaky(&self, _ctx: OperationContext, _input: u32) -> OperationResult<u32> {
        Err(HandlerError::new(HandlerErrorType::Unavailable, "the ledger is down").into())
    }
}

pub struct World {
    pub client: Client,
    pub dispatcher: Dispatcher,
    pub handler_store: Arc<MemoryStore>,
    pub started: Vec<OperationHandle<waits::Wait>>,
    pub backing_off: OperationHandle<waits::Flaky>,
    pub dead: DeliveryId,
    pub failing: DeliveryId,
    pub admin: ServerHandle,
    pub metrics: metrics_exporter_prometheus::PrometheusRecorder,
}

/// Finishes seeded operation `token` and returns its delivery.
async fn seed_delivery(store: &MemoryStore, token: &str, error: Option<&str>) -> DeliveryId {
    let now = clock::now();
    let record = AsyncOperationRecord {
        token: token.into(),
        service: "waits.v1".into(),
        operation: "wait".into(),
        request_id: format!("req-{token}"),
        principal: Principal::local("payments"),
        input: Content::new("application/json", b"1".to_vec()),
        headers: BTreeMap::new(),
        links: vec![
            Link::new("javascript:alert(1)", "evil.Script"),
            Link::new(format!("https://caller.example/{HOSTILE}"), "caller.Op"),
        ],
        callback: Some(StoredCallback {
            url: "http://127.0.0.1:9/callback/1?secret=do-not-show".into(),
            headers: BTreeMap::from([("authorization".into(), "Bearer do-not-show".into())]),
        }),
        state: AsyncState::Running,
        resumable: true,
        cancel_requested_at: None,
        deadline: None,
        started_at: now,
        closed_at: None,
        // Another live owner: the dispatcher leaves it alone.
        lease: Some(Lease::new(
            "another-replica",
            now + Duration::from_secs(86_400),
        )),
    };
    let key = StartKey {
        principal: "payments".into(),
        service: "waits.v1".into(),
        operation: "wait".into(),
        request_id: record.request_id.clone(),
    };
    let BeginStart::Claimed(claim) = store
        .begin_start(&key, now, now + Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    let answer = StartAnswer::Async {
        token: token.into(),
        links: Vec::new(),
    };
    assert!(
        store
            .finish_start(&key, &claim, &answer, Some(&record), now)
            .await
            .unwrap()
    );
    if error.is_none() {
        return uuid::Uuid::nil();
    }
    let completion = Completion {
        token: token.into(),
        outcome: Ok(Content::new("application/json", b"2".to_vec())),
        links: Vec::new(),
        start_time: None,
        close_time: None,
    };
    let CompleteAsync::Applied { delivery: Some(id) } =
        store.complete_async(&completion, now).await.unwrap()
    else {
        panic!("not enqueued")
    };
    id
}

impl World {
    /// The world, its admin router authenticated by [`TOKEN`].
    pub async fn new() -> Self {
        let handler_store = Arc::new(MemoryStore::new());
        let dispatcher = Dispatcher::builder()
            .service(WaitsService::handler(Waiter))
            .store(handler_store.clone())
            .build();
        // No jitter: under the default full jitter the first delay could be a few seconds, and
        // the page would show a second attempt.
        let slow_retries = RetryPolicy::new()
            .initial_interval(Duration::from_secs(3600))
            .maximum_interval(Duration::from_secs(3600))
            .jitter(0.0);
        let client = Client::builder()
            .endpoint("waits", InProcessTransport::new(dispatcher.clone()))
            .endpoint(
                "ledger",
                EndpointConfig::new(InProcessTransport::new(dispatcher.clone()))
                    .retry(slow_retries),
            )
            .store(Arc::new(MemoryStore::new()))
            .caller_link_base("http://payments.example/api/operations")
            .build();
        let waits = WaitsClient::new(client.clone(), "waits");
        let mut started = Vec::new();
        for n in 0..2 {
            started.push(waits.wait(n).start().await.unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ledger = WaitsClient::new(client.clone(), "ledger");
        let backing_off = ledger.flaky(1).schedule().unwrap();
        backing_off
            .wait_for(|info| info.state == OperationState::BackingOff)
            .await;

        // A running operation whose request carried hostile text, a dead delivery whose error
        // is hostile, and one that failed once and waits for its retry.
        seed_delivery(&handler_store, "tok-running-hostile", None).await;
        let dead = seed_delivery(&handler_store, "tok-dead-1", Some("dead")).await;
        let failing = seed_delivery(&handler_store, "tok-failing-2", Some("failing")).await;
        let now = clock::now();
        let claimed = handler_store
            .claim_due_deliveries(now, Duration::from_secs(60), 10)
            .await
            .unwrap();
        for delivery in &claimed {
            if delivery.id == dead {
                assert!(
                    handler_store
                        .mark_dead(delivery, now, &format!("410 Gone {HOSTILE}"))
                        .await
                        .unwrap()
                );
            } else {
                assert!(
                    handler_store
                        .mark_retry(
                            delivery,
                            now + Duration::from_secs(600),
                            "connection refused"
                        )
                        .await
                        .unwrap()
                );
            }
        }

        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("nexus_test_requests_total", "side" => "caller").increment(3);
        });
        let admin = Admin::builder()
            .client(client.clone())
            .dispatcher(dispatcher.clone())
            .metrics(recorder.handle())
            .authenticator(BearerAuthenticator::new(
                StaticTokens::new().token("operator", TOKEN),
            ))
            .build()
            .unwrap()
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        Self {
            client,
            dispatcher,
            handler_store,
            started,
            backing_off,
            dead,
            failing,
            admin,
            metrics: recorder,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.admin.url())
    }
}
