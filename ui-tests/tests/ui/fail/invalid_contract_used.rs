// An invalid contract still generates its items as stubs: code that names the client, its methods
// (valid or not), the descriptors and the handler gets no second wave of errors; the one mistake
// is the only error.
use nexus_runtime::service::Dispatcher;
use nexus_runtime::{Client, OperationContext, OperationResult, nexus_service};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Order {
    pub item: String,
}

#[nexus_service(name = "orders.v1")]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, order: Order) -> OperationResult<String>;
    fn broken(&self, ctx: OperationContext, order: Order) -> OperationResult<u32>;
}

struct Shop;

async fn caller(client: Client) -> Result<(), nexus_runtime::CallError> {
    let orders = OrdersClient::new(client, "orders");
    let id: String = orders.place(Order { item: "tea".into() }).await?;
    let n: u32 = orders.broken(Order { item: id }).await?;
    let _ = (n, orders::Place, orders::Broken, <OrdersService as nexus_runtime::Service>::NAME);
    let _ = Dispatcher::builder().service(OrdersService::handler(Shop)).build();
    Ok(())
}

fn main() {
    let _ = caller;
}
