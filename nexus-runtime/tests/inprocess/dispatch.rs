//! The dispatch path, in-process: routing, decoding, error mapping, panics, deadlines, async
//! completion and cancellation. The in-process transport goes through the same dispatcher as HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nexus_runtime::codec::{self, Content};
use nexus_runtime::error::{HandlerErrorType, OperationErrorState};
use nexus_runtime::machinery::RetryPolicy;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::{CancelRequest, InProcessTransport, StartRequest, StartResponse};
use nexus_runtime::{
    CallError, Client, HandlerError, Link, OperationContext, OperationError, OperationResult,
    StartError, nexus_service,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An order.
#[derive(Serialize, Deserialize, JsonSchema, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Its id.
    pub order_id: String,
    /// Its amount.
    pub amount: u64,
}

/// A service exercising every answer a handler can give.
#[nexus_service(name = "test/shop v1")]
pub trait Shop {
    /// Sync echo of the order amount.
    async fn price(&self, ctx: OperationContext, input: Order) -> OperationResult<u64>;
    /// Async: completes after `amount` milliseconds, or canceled.
    async fn ship(&self, ctx: OperationContext, input: Order) -> OperationResult<String>;
    /// Panics.
    async fn explode(&self, ctx: OperationContext, input: String) -> OperationResult<()>;
    /// Async work that panics.
    async fn explode_later(&self, ctx: OperationContext) -> OperationResult<()>;
    /// Sleeps longer than any deadline.
    async fn stall(&self, ctx: OperationContext) -> OperationResult<()>;
    /// Fails synchronously with an OperationError.
    #[operation(name = "reject.order")]
    async fn reject(&self, ctx: OperationContext, input: Order) -> OperationResult<()>;
    /// Reports what it saw of the request.
    async fn inspect(&self, ctx: OperationContext) -> OperationResult<Vec<String>>;
}

#[derive(Default)]
struct ShopImpl {
    calls: AtomicUsize,
}

impl Shop for ShopImpl {
    async fn price(&self, _ctx: OperationContext, input: Order) -> OperationResult<u64> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(input.amount.into())
    }

    async fn ship(&self, ctx: OperationContext, input: Order) -> OperationResult<String> {
        ctx.start_async(move |work| async move {
            tokio::select! {
                _ = work.cancelled() => Err(OperationError::canceled(format!("{} not shipped", input.order_id))),
                _ = tokio::time::sleep(Duration::from_millis(input.amount)) => {
                    work.add_link(Link::new("https://shop.example/parcels/1", "shop.Parcel"));
                    Ok(format!("{} shipped", input.order_id))
                }
            }
        })
    }

    async fn explode(&self, _ctx: OperationContext, input: String) -> OperationResult<()> {
        panic!("boom: {input}");
    }

    async fn explode_later(&self, ctx: OperationContext) -> OperationResult<()> {
        ctx.start_async(|_| async { panic!("async boom") })
    }

    async fn stall(&self, _ctx: OperationContext) -> OperationResult<()> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(().into())
    }

    async fn reject(&self, _ctx: OperationContext, input: Order) -> OperationResult<()> {
        Err(OperationError::failed(format!("order {} rejected", input.order_id)).into())
    }

    async fn inspect(&self, ctx: OperationContext) -> OperationResult<Vec<String>> {
        ctx.add_link(Link::new("https://shop.example/x", "shop.X"));
        Ok(vec![
            ctx.service().to_owned(),
            ctx.operation().to_owned(),
            ctx.request_id().to_owned(),
            ctx.header("X-Tenant").unwrap_or_default().to_owned(),
            ctx.links().len().to_string(),
            ctx.remaining().is_some().to_string(),
        ]
        .into())
    }
}

fn setup() -> (Arc<ShopImpl>, Dispatcher, ShopClient) {
    let shop = Arc::new(ShopImpl::default());
    let dispatcher = Dispatcher::builder()
        .service(ShopService::handler_arc(shop.clone()))
        .build();
    let client = Client::builder()
        .endpoint("shop", InProcessTransport::new(dispatcher.clone()))
        .build();
    (shop, dispatcher, ShopClient::new(client, "shop"))
}

fn order(id: &str, amount: u64) -> Order {
    Order {
        order_id: id.into(),
        amount,
    }
}

fn raw_start(service: &str, operation: &str, input: Content) -> StartRequest {
    StartRequest {
        service: service.into(),
        operation: operation.into(),
        request_id: "req-1".into(),
        headers: Default::default(),
        links: Vec::new(),
        callback: None,
        request_deadline: None,
        operation_timeout: None,
        input,
    }
}

fn handler_error(result: Result<StartResponse, StartError>) -> HandlerError {
    match result {
        Err(StartError::Handler(e)) => e,
        other => panic!("expected a handler error, got {other:?}"),
    }
}

#[tokio::test]
async fn sync_call_round_trips_through_the_codec() {
    let (shop, _, client) = setup();
    assert_eq!(client.price(order("o1", 42)).await.unwrap(), 42);
    assert_eq!(shop.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_service_and_operation_are_not_found_and_list_nothing() {
    let (_, dispatcher, _) = setup();
    let err = handler_error(
        dispatcher
            .start(raw_start("nope", "price", Content::empty()))
            .await,
    );
    assert_eq!(err.error_type, HandlerErrorType::NotFound);
    assert_eq!(err.message, "service `nope` is not served here");
    let err = handler_error(
        dispatcher
            .start(raw_start("test/shop v1", "nope", Content::empty()))
            .await,
    );
    assert_eq!(err.error_type, HandlerErrorType::NotFound);
    assert_eq!(
        err.message,
        "service `test/shop v1` has no operation `nope`"
    );
    assert!(!err.is_retryable());
}

/// Every transport gets the dispatcher's checks of a start: a callback URL the guard refuses,
/// or an operation timeout the clocks cannot hold, is BAD_REQUEST before the handler runs.
#[tokio::test]
async fn refused_callbacks_and_endless_timeouts_are_bad_requests() {
    let (shop, dispatcher, _) = setup();
    let price = || {
        raw_start(
            "test/shop v1",
            "price",
            codec::encode(&order("o1", 1)).unwrap(),
        )
    };
    let mut request = price();
    request.callback = Some(nexus_runtime::completion::Callback::Url {
        url: "http://169.254.169.254/latest/meta-data/".into(),
        headers: Default::default(),
    });
    let err = handler_error(dispatcher.start(request).await);
    assert_eq!(err.error_type, HandlerErrorType::BadRequest);
    assert!(
        err.message
            .starts_with("callback URL `http://169.254.169.254/latest/meta-data/` is refused"),
        "{}",
        err.message
    );
    for timeout in [Duration::MAX, nexus_runtime::protocol::MAX_TIMEOUT * 2] {
        let mut request = price();
        request.operation_timeout = Some(timeout);
        let err = handler_error(dispatcher.start(request).await);
        assert_eq!(err.error_type, HandlerErrorType::BadRequest);
        assert!(
            err.message.contains("`operation-timeout`"),
            "{}",
            err.message
        );
    }
    assert_eq!(
        shop.calls.load(Ordering::SeqCst),
        0,
        "the handler never ran"
    );
    let mut request = price();
    request.operation_timeout = Some(nexus_runtime::protocol::MAX_TIMEOUT);
    assert!(dispatcher.start(request).await.is_ok());
}

#[tokio::test]
async fn undecodable_input_is_bad_request_naming_the_field() {
    let (shop, dispatcher, _) = setup();
    let input = Content::new(codec::JSON, r#"{"orderId": "o1", "amount": "ten"}"#);
    let err = handler_error(
        dispatcher
            .start(raw_start("test/shop v1", "price", input))
            .await,
    );
    assert_eq!(err.error_type, HandlerErrorType::BadRequest);
    assert_eq!(
        err.message,
        "invalid input for operation `price`: at `amount`: invalid type: string \"ten\", expected u64 at line 1 column 33"
    );
    let input = Content::new(codec::JSON, r#"{"amount": 1}"#);
    let err = handler_error(
        dispatcher
            .start(raw_start("test/shop v1", "price", input))
            .await,
    );
    assert!(
        err.message.contains("missing field `orderId`"),
        "{}",
        err.message
    );
    let input = Content::new("text/plain", "hello");
    let err = handler_error(
        dispatcher
            .start(raw_start("test/shop v1", "price", input))
            .await,
    );
    assert!(
        err.message
            .contains("unsupported content type `text/plain`"),
        "{}",
        err.message
    );
    assert_eq!(
        shop.calls.load(Ordering::SeqCst),
        0,
        "the handler never ran"
    );
}

#[tokio::test]
async fn a_panicking_handler_is_internal_and_the_dispatcher_keeps_serving() {
    let (_, _, client) = setup();
    for _ in 0..3 {
        // INTERNAL is retryable: without this policy the machinery would retry the panic forever.
        let err = client
            .explode("x".into())
            .retry_policy(RetryPolicy::no_retries())
            .await
            .unwrap_err();
        let CallError::Handler(err) = err else {
            panic!("expected a handler error, got {err:?}")
        };
        assert_eq!(err.error_type, HandlerErrorType::Internal);
        assert_eq!(err.message, "handler of `explode` panicked: boom: x");
        assert_eq!(client.price(order("still-up", 7)).await.unwrap(), 7);
    }
}

#[tokio::test]
async fn a_panicking_async_work_completes_as_failed() {
    let (_, dispatcher, client) = setup();
    let err = client.explode_later().await.unwrap_err();
    let op = err.as_operation_error().expect("an operation error");
    assert_eq!(op.state, OperationErrorState::Failed);
    assert_eq!(op.message, "handler of `explodeLater` panicked: async boom");
    assert_eq!(dispatcher.running_operations(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_drops_the_handler_with_upstream_timeout() {
    let (_, dispatcher, _) = setup();
    let mut request = raw_start("test/shop v1", "stall", Content::empty());
    request.request_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(2));
    let err = handler_error(dispatcher.start(request).await);
    assert_eq!(err.error_type, HandlerErrorType::UpstreamTimeout);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_sync_operation_error_is_surfaced_typed() {
    let (_, _, client) = setup();
    let err = client.reject(order("o9", 1)).await.unwrap_err();
    let op = err.as_operation_error().expect("an operation error");
    assert_eq!(op.state, OperationErrorState::Failed);
    assert_eq!(op.message, "order o9 rejected");
}

#[tokio::test(start_paused = true)]
async fn async_operations_complete_later_with_links() {
    let (_, dispatcher, client) = setup();
    let handle = client.ship(order("o2", 500)).start().await.unwrap();
    let token = handle
        .token()
        .expect("async operations have a token")
        .to_owned();
    assert!(!handle.is_done());
    assert_eq!(dispatcher.running_operations(), 1);
    assert_eq!(handle.result().await.unwrap(), "o2 shipped");
    assert_eq!(handle.completion_links()[0].link_type, "shop.Parcel");
    assert_eq!(dispatcher.running_operations(), 0);
    // The token is no longer running: cancelling it now is NOT_FOUND.
    let err = dispatcher
        .cancel(CancelRequest {
            service: "test/shop v1".into(),
            operation: "ship".into(),
            token,
            headers: Default::default(),
            request_deadline: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.error_type, HandlerErrorType::NotFound);
}

#[tokio::test(start_paused = true)]
async fn cancelling_an_async_operation_reaches_the_handler() {
    let (_, dispatcher, client) = setup();
    let handle = client.ship(order("o3", 60_000)).start().await.unwrap();
    handle.cancel().await.unwrap();
    let err = handle.result().await.unwrap_err();
    let op = err.as_operation_error().expect("an operation error");
    assert_eq!(op.state, OperationErrorState::Canceled);
    assert_eq!(op.message, "o3 not shipped");
    assert_eq!(dispatcher.running_operations(), 0);
}

#[tokio::test]
async fn cancel_requests_are_checked_against_the_token_owner() {
    let (_, dispatcher, client) = setup();
    let handle = client.ship(order("o4", 60_000)).start().await.unwrap();
    let token = handle.token().unwrap().to_owned();
    let cancel = |operation: &str, token: &str| CancelRequest {
        service: "test/shop v1".into(),
        operation: operation.into(),
        token: token.into(),
        headers: Default::default(),
        request_deadline: None,
    };
    let err = dispatcher
        .cancel(cancel("price", &token))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, HandlerErrorType::NotFound);
    assert!(
        err.message
            .contains("belongs to operation `test/shop v1/ship`"),
        "{}",
        err.message
    );
    let err = dispatcher
        .cancel(cancel("ship", "unknown"))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "no running `ship` operation has token `unknown`"
    );
    dispatcher.cancel(cancel("ship", &token)).await.unwrap();
    assert!(
        handle
            .result()
            .await
            .unwrap_err()
            .as_operation_error()
            .unwrap()
            .is_canceled()
    );
}

#[tokio::test]
async fn the_handler_sees_request_metadata_and_returns_links() {
    let (_, _, client) = setup();
    let handle = client
        .inspect()
        .request_id("req-42")
        .header("X-Tenant", "acme")
        .link(Link::new("https://caller.example/1", "caller.Event"))
        .schedule_to_close_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    assert!(handle.is_sync());
    assert_eq!(handle.start_links()[0].url, "https://shop.example/x");
    let seen = handle.result().await.unwrap();
    assert_eq!(
        seen,
        ["test/shop v1", "inspect", "req-42", "acme", "1", "true"]
    );
}

#[tokio::test]
async fn wire_names_with_slashes_spaces_and_dots_work() {
    let (_, dispatcher, client) = setup();
    assert_eq!(dispatcher.service_names(), ["test/shop v1"]);
    client.reject(order("o5", 1)).await.unwrap_err();
    let input = codec::encode(&order("o6", 1)).unwrap();
    let err = dispatcher
        .start(raw_start("test/shop v1", "reject.order", input))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Operation(_)));
}

#[tokio::test]
async fn unknown_endpoint_is_a_clear_caller_error() {
    let (_, _, client) = setup();
    let other = ShopClient::new(client.service_client().client().clone(), "nowhere");
    let err = other.price(order("o7", 1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid call: unknown endpoint `nowhere`; configured endpoints: shop"
    );
}

/// The caller's link back to its operation: named by a configured base, or none at all.
#[tokio::test]
async fn the_caller_links_each_start_to_itself_unless_told_not_to() {
    let shop = Arc::new(ShopImpl::default());
    let dispatcher = Dispatcher::builder()
        .service(ShopService::handler_arc(shop.clone()))
        .build();
    let based = ShopClient::new(
        Client::builder()
            .endpoint("shop", InProcessTransport::new(dispatcher.clone()))
            .caller_link_base("https://payments.example/api/operations/")
            .build(),
        "shop",
    );
    let handle = based.inspect().start().await.unwrap();
    assert_eq!(handle.result().await.unwrap()[4], "1");
    let silent = ShopClient::new(
        Client::builder()
            .endpoint("shop", InProcessTransport::new(dispatcher))
            .no_caller_link()
            .build(),
        "shop",
    );
    assert_eq!(silent.inspect().await.unwrap()[4], "0");
    // The links the handler returned show in the operation's info.
    let info = handle.info();
    assert_eq!(info.start_links[0].url, "https://shop.example/x");
}
