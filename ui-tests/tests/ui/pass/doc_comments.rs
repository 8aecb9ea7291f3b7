//! Doc comments become the descriptions of the service and its operations.

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, Operation, OperationContext, OperationResult, Service, nexus_service};

/// Places orders.
///
/// Owned by the shop team.
#[nexus_service(name = "orders.v1")]
pub trait Orders {
    /// Places an order and returns its number.
    ///
    ///     Indented lines keep their indentation.
    async fn place(&self, ctx: OperationContext, item: String) -> OperationResult<u64>;

    async fn undocumented(&self, ctx: OperationContext) -> OperationResult<()>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, item: String) -> OperationResult<u64> {
        Ok((item.len() as u64).into())
    }

    async fn undocumented(&self, _ctx: OperationContext) -> OperationResult<()> {
        Ok(().into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(OrdersService::DESCRIPTION, "Places orders.\n\nOwned by the shop team.");
    assert_eq!(
        orders::Place::DESCRIPTION,
        "Places an order and returns its number.\n\n    Indented lines keep their indentation."
    );
    assert_eq!(orders::Undocumented::DESCRIPTION, "");

    let definition = Definition::of::<OrdersService>();
    let service = &definition.services["orders.v1"];
    assert_eq!(service.description.as_deref(), Some(OrdersService::DESCRIPTION));
    assert_eq!(
        service.operations["place"].description.as_deref(),
        Some(orders::Place::DESCRIPTION)
    );
    assert_eq!(service.operations["undocumented"].description, None);

    let dispatcher = Dispatcher::builder().service(OrdersService::handler(Shop)).build();
    let client = Client::builder()
        .endpoint("shop", InProcessTransport::new(dispatcher))
        .build();
    let orders = OrdersClient::new(client, "shop");
    assert_eq!(orders.place("book".into()).await.unwrap(), 4);
    orders.undocumented().await.unwrap();
}
