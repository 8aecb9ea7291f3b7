//! `#[operation(name = "...")]` sets the wire name; the Rust method keeps its name.

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, Operation, OperationContext, OperationResult, nexus_service};

#[nexus_service(name = "orders.v1")]
pub trait Orders {
    #[operation(name = "PlaceOrder")]
    async fn place(&self, ctx: OperationContext, item: String) -> OperationResult<u64>;

    /// `new` would collide with `OrdersClient::new`: renamed in Rust, same wire name.
    #[operation(name = "new")]
    async fn create(&self, ctx: OperationContext) -> OperationResult<u64>;

    async fn cancel_order(&self, ctx: OperationContext, id: u64) -> OperationResult<bool>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, item: String) -> OperationResult<u64> {
        Ok((item.len() as u64).into())
    }

    async fn create(&self, _ctx: OperationContext) -> OperationResult<u64> {
        Ok(0.into())
    }

    async fn cancel_order(&self, _ctx: OperationContext, id: u64) -> OperationResult<bool> {
        Ok((id == 4).into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(orders::Place::NAME, "PlaceOrder");
    assert_eq!(orders::Create::NAME, "new");
    assert_eq!(orders::CancelOrder::NAME, "cancelOrder");
    let definition = Definition::of::<OrdersService>();
    let names: Vec<&str> = definition.services["orders.v1"]
        .operations
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["PlaceOrder", "cancelOrder", "new"]);

    let dispatcher = Dispatcher::builder().service(OrdersService::handler(Shop)).build();
    let client = Client::builder()
        .endpoint("shop", InProcessTransport::new(dispatcher))
        .build();
    let orders = OrdersClient::new(client, "shop");
    let id = orders.place("book".into()).await.unwrap();
    assert_eq!(orders.create().await.unwrap(), 0);
    assert!(orders.cancel_order(id).await.unwrap());
}
