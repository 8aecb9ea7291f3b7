//! The test kit itself: `TestEnv` (in-process wiring, memory store, paused time) and
//! `MockService` (answers by closure, async starts decided by the test, recorded calls).
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nexus_runtime::client::OperationState;
use nexus_runtime::error::{HandlerErrorType, OperationErrorState, TimeoutKind};
use nexus_runtime::machinery::RetryPolicy;
use nexus_runtime::testing::{MockService, Reply, TestEnv};
use nexus_runtime::{
    CallError, HandlerError, OperationContext, OperationError, OperationResult, nexus_service,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A quote request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuoteInput {
    /// What to quote.
    pub item_id: String,
}

/// Quotes prices.
#[nexus_service(name = "quotes.v1")]
pub trait Quotes {
    /// The price of an item, in cents.
    async fn price(&self, ctx: OperationContext, input: QuoteInput) -> OperationResult<u64>;
    /// A price computed later.
    async fn slow_price(&self, ctx: OperationContext, input: QuoteInput) -> OperationResult<u64>;
    /// Forgets every quote: no input, no output.
    async fn reset(&self, ctx: OperationContext) -> OperationResult<()>;
}

/// Another service, to check that a mock refuses its descriptors.
#[nexus_service(name = "other.v1")]
pub trait Other {
    /// Pings.
    async fn ping(&self, ctx: OperationContext) -> OperationResult<()>;
}

fn quote(item: &str) -> QuoteInput {
    QuoteInput {
        item_id: item.to_owned(),
    }
}

/// A real implementation, for `TestEnv` with a handler under test.
struct Desk;

impl Quotes for Desk {
    async fn price(&self, _ctx: OperationContext, input: QuoteInput) -> OperationResult<u64> {
        if input.item_id.is_empty() {
            return Err(HandlerError::bad_request("`itemId` must not be empty").into());
        }
        Ok((input.item_id.len() as u64 * 100).into())
    }
    async fn slow_price(&self, ctx: OperationContext, input: QuoteInput) -> OperationResult<u64> {
        ctx.start_async(move |work| async move {
            tokio::select! {
                _ = work.cancelled() => Err(OperationError::canceled("quote canceled")),
                _ = tokio::time::sleep(Duration::from_secs(3600)) => Ok(input.item_id.len() as u64),
            }
        })
    }
    async fn reset(&self, _ctx: OperationContext) -> OperationResult<()> {
        Ok(().into())
    }
}

#[tokio::test(start_paused = true)]
async fn env_runs_a_real_handler_sync_and_async_through_an_hour_of_paused_time() {
    let env = TestEnv::builder()
        .service(QuotesService::handler(Desk))
        .memory_store()
        .build();
    assert!(env.store().is_some() && env.dispatcher().has_store());
    let quotes = QuotesClient::new(env.client(), env.endpoint());

    assert_eq!(quotes.price(quote("tea")).await.unwrap(), 300);
    match quotes.price(quote("")).await {
        Err(CallError::Handler(e)) => assert_eq!(e.error_type, HandlerErrorType::BadRequest),
        other => panic!("expected BAD_REQUEST, got {other:?}"),
    }
    quotes.reset().await.unwrap();

    let real = std::time::Instant::now();
    let handle = quotes.slow_price(quote("coffee")).start().await.unwrap();
    assert!(handle.token().is_some());
    env.advance(Duration::from_secs(3599)).await;
    assert_eq!(
        handle.state(),
        OperationState::Started,
        "not done before the hour"
    );
    env.advance(Duration::from_secs(1)).await;
    assert_eq!(handle.state(), OperationState::Succeeded);
    assert_eq!(handle.result().await.unwrap(), 6);
    assert!(real.elapsed() < Duration::from_secs(5), "paused time");
    env.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn mock_answers_values_and_errors_and_records_calls() {
    let mock = MockService::of::<QuotesService>();
    mock.on::<quotes::Price>(|input| match input.item_id.as_str() {
        "gone" => Reply::error(OperationError::failed("discontinued").with_details(&"sku-9")),
        "bad" => Reply::error(HandlerError::bad_request("no such item")),
        item => Reply::value(item.len() as u64),
    })
    .on::<quotes::Reset>(|()| Reply::value(()));
    let env = TestEnv::new(mock.clone());
    let quotes = QuotesClient::new(env.client(), env.endpoint());

    assert_eq!(
        quotes
            .price(quote("tea"))
            .header("x-team", "payments")
            .request_id("req-1")
            .await
            .unwrap(),
        3
    );
    match quotes.price(quote("gone")).await {
        Err(CallError::Operation(e)) => {
            assert_eq!(e.state, OperationErrorState::Failed);
            assert_eq!(e.message, "discontinued");
            assert_eq!(e.details::<String>().unwrap().as_deref(), Some("sku-9"));
        }
        other => panic!("expected a failed operation, got {other:?}"),
    }
    match quotes.price(quote("bad")).await {
        Err(CallError::Handler(e)) => assert_eq!(e.error_type, HandlerErrorType::BadRequest),
        other => panic!("expected BAD_REQUEST, got {other:?}"),
    }
    quotes.reset().await.unwrap();

    let calls = mock.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].operation, "price");
    assert_eq!(calls[0].request_id, "req-1");
    assert_eq!(calls[0].header("X-Team"), Some("payments"));
    assert_eq!(
        calls[0].input_json(),
        Some(serde_json::json!({"itemId": "tea"}))
    );
    assert_eq!(calls[0].input_as::<QuoteInput>().unwrap(), quote("tea"));
    assert_eq!(
        mock.inputs::<quotes::Price>(),
        [quote("tea"), quote("gone"), quote("bad")]
    );
    assert_eq!(mock.calls_of::<quotes::Reset>().len(), 1);
    assert_eq!(mock.answered_operations(), ["price", "reset"]);
    mock.clear_calls();
    assert!(mock.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retries_are_advanced_through_with_the_same_request_id() {
    let mock = MockService::of::<QuotesService>();
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    mock.on::<quotes::Price>(move |_| {
        if counted.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::error(HandlerError::unavailable("warming up"))
        } else {
            Reply::value(42)
        }
    });
    let env = TestEnv::new(mock.clone());
    let quotes = QuotesClient::new(env.client(), env.endpoint());

    let handle = quotes.price(quote("tea")).schedule().unwrap();
    env.settle().await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(handle.state(), OperationState::BackingOff);
    // Default policy, full jitter: the second attempt within 1 s, the third within 2 s after it.
    env.advance(Duration::from_secs(1)).await;
    assert!(attempts.load(Ordering::SeqCst) >= 2);
    env.advance(Duration::from_secs(2)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(handle.result().await.unwrap(), 42);
    let calls = mock.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.request_id == calls[0].request_id));
}

#[tokio::test(start_paused = true)]
async fn retries_and_timeouts_follow_the_endpoint_configuration() {
    let mock = MockService::of::<QuotesService>();
    mock.on::<quotes::Price>(|_| Reply::error(HandlerError::unavailable("down")));
    mock.on::<quotes::SlowPrice>(|_| Reply::pending());
    let env = TestEnv::builder()
        .service(mock.clone())
        .configure_endpoint(|endpoint| {
            endpoint
                .retry(RetryPolicy::default().maximum_attempts(3))
                .schedule_to_close_timeout(Duration::from_secs(600))
        })
        .jitter_seed(7)
        .build();
    let quotes = QuotesClient::new(env.client(), env.endpoint());

    match quotes.price(quote("tea")).await {
        Err(CallError::Handler(e)) => assert_eq!(e.error_type, HandlerErrorType::Unavailable),
        other => panic!("expected UNAVAILABLE after the last attempt, got {other:?}"),
    }
    assert_eq!(mock.calls_of::<quotes::Price>().len(), 3);

    let handle = quotes.slow_price(quote("tea")).start().await.unwrap();
    env.advance(Duration::from_secs(600)).await;
    match handle.result().await {
        Err(CallError::Timeout { kind, .. }) => assert_eq!(kind, TimeoutKind::ScheduleToClose),
        other => panic!("expected a schedule-to-close timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn pending_starts_are_completed_failed_or_canceled_when_the_test_says() {
    let mock = MockService::of::<QuotesService>();
    let started = mock
        .on::<quotes::SlowPrice>(|_| Reply::pending())
        .started::<quotes::SlowPrice>();
    let env = TestEnv::builder()
        .service(mock.clone())
        .memory_store()
        .build();
    let quotes = QuotesClient::new(env.client(), env.endpoint());

    // Completed.
    let handle = quotes
        .slow_price(quote("tea"))
        .header("x-run", "1")
        .start()
        .await
        .unwrap();
    let op = started.next().await;
    assert_eq!(op.input(), &quote("tea"));
    assert_eq!(Some(op.token()), handle.token());
    assert_eq!(op.request_id(), handle.request_id());
    assert_eq!(op.headers()["x-run"], "1");
    env.settle().await;
    assert_eq!(handle.state(), OperationState::Started);
    op.complete(7);
    assert_eq!(handle.result().await.unwrap(), 7);

    // Failed.
    let handle = quotes.slow_price(quote("jam")).start().await.unwrap();
    started.next().await.fail("out of stock");
    match handle.result().await {
        Err(CallError::Operation(e)) => {
            assert_eq!(e.state, OperationErrorState::Failed);
            assert_eq!(e.message, "out of stock");
        }
        other => panic!("expected a failed operation, got {other:?}"),
    }

    // The caller cancels; the test sees the request and completes the operation as canceled.
    let handle = quotes.slow_price(quote("figs")).start().await.unwrap();
    let op = started.next().await;
    assert!(!op.is_cancel_requested());
    handle.cancel().await.unwrap();
    op.cancel_requested().await;
    op.cancel("canceled as asked");
    match handle.result().await {
        Err(CallError::Operation(e)) => assert_eq!(e.state, OperationErrorState::Canceled),
        other => panic!("expected a canceled operation, got {other:?}"),
    }

    // Dropped without an outcome: failed, saying so.
    let handle = quotes.slow_price(quote("nuts")).start().await.unwrap();
    drop(started.next().await);
    match handle.result().await {
        Err(CallError::Operation(e)) => {
            assert!(e.message.contains("without completing it"), "{}", e.message);
        }
        other => panic!("expected a failed operation, got {other:?}"),
    }
    assert!(started.try_next().is_none());
}

#[tokio::test(start_paused = true)]
async fn completed_replies_answer_async_at_once() {
    let mock = MockService::of::<QuotesService>();
    mock.on::<quotes::SlowPrice>(|input| match input.item_id.as_str() {
        "none" => Reply::completed(Err(OperationError::canceled("withdrawn"))),
        _ => Reply::completed(Ok(5)),
    });
    let env = TestEnv::new(mock);
    let quotes = QuotesClient::new(env.client(), env.endpoint());

    let handle = quotes.slow_price(quote("tea")).start().await.unwrap();
    assert!(handle.token().is_some(), "an async answer");
    assert_eq!(handle.result().await.unwrap(), 5);
    match quotes.slow_price(quote("none")).await {
        Err(CallError::Operation(e)) => assert_eq!(e.state, OperationErrorState::Canceled),
        other => panic!("expected a canceled operation, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_operation_without_an_answer_is_not_implemented_and_recorded() {
    let mock = MockService::of::<QuotesService>();
    let env = TestEnv::new(mock.clone());
    let quotes = QuotesClient::new(env.client(), env.endpoint());
    match quotes.price(quote("tea")).await {
        Err(CallError::Handler(e)) => {
            assert_eq!(e.error_type, HandlerErrorType::NotImplemented);
            assert!(
                e.message.contains("no answer for operation `price`"),
                "{}",
                e.message
            );
        }
        other => panic!("expected NOT_IMPLEMENTED, got {other:?}"),
    }
    assert_eq!(mock.inputs::<quotes::Price>(), [quote("tea")]);
}

#[test]
#[should_panic(
    expected = "`ping` is an operation of `other.v1`, not of the mocked service `quotes.v1`"
)]
fn a_mock_refuses_another_services_operations() {
    MockService::of::<QuotesService>().on::<other::Ping>(|()| Reply::value(()));
}
