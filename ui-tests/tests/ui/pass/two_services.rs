//! Two services in one module, implemented by one type and served by one dispatcher.

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, OperationContext, OperationResult, Service, nexus_service};

#[nexus_service(name = "orders.v1")]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, item: String) -> OperationResult<u64>;
}

#[nexus_service(name = "stock.v1")]
pub trait Stock {
    async fn place(&self, ctx: OperationContext, item: String) -> OperationResult<bool>;
    async fn count(&self, ctx: OperationContext) -> OperationResult<u32>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, item: String) -> OperationResult<u64> {
        Ok((item.len() as u64).into())
    }
}

impl Stock for Shop {
    async fn place(&self, _ctx: OperationContext, item: String) -> OperationResult<bool> {
        Ok((!item.is_empty()).into())
    }

    async fn count(&self, _ctx: OperationContext) -> OperationResult<u32> {
        Ok(3.into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(OrdersService::NAME, "orders.v1");
    assert_eq!(StockService::NAME, "stock.v1");
    let mut definition = Definition::of::<OrdersService>();
    definition.merge(Definition::of::<StockService>()).unwrap();
    assert_eq!(definition.services.len(), 2);
    assert_eq!(definition.services["stock.v1"].operations.len(), 2);

    let dispatcher = Dispatcher::builder()
        .service(OrdersService::handler(Shop))
        .service(StockService::handler(Shop))
        .build();
    assert_eq!(dispatcher.service_names(), ["orders.v1", "stock.v1"]);
    let client = Client::builder()
        .endpoint("shop", InProcessTransport::new(dispatcher))
        .build();
    let orders = OrdersClient::new(client.clone(), "shop");
    let stock = StockClient::new(client, "shop");
    assert_eq!(orders.place("book".into()).await.unwrap(), 4);
    assert!(stock.place("book".into()).await.unwrap());
    assert_eq!(stock.count().await.unwrap(), 3);
}
