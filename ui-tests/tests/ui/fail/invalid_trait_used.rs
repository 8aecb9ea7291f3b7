// A contract whose trait itself is invalid (here a supertrait): every generated item is a stub,
// so code naming them gets no second wave of errors.
use nexus_runtime::service::Dispatcher;
use nexus_runtime::{Client, OperationContext, OperationResult, nexus_service};

pub trait Audited {}

#[nexus_service(name = "orders.v1")]
pub trait Orders: Audited {
    async fn place(&self, ctx: OperationContext, item: String) -> OperationResult<String>;
    async fn count(&self, ctx: OperationContext) -> OperationResult<u32>;
}

struct Shop;

async fn caller(client: Client) -> Result<(), nexus_runtime::CallError> {
    let orders = OrdersClient::new(client, "orders");
    let id: String = orders.place("tea".to_owned()).await?;
    let n: u32 = orders.count().await?;
    let _ = (id, n, orders::Place, orders::Count, orders.endpoint());
    let _ = Dispatcher::builder().service(OrdersService::handler(Shop)).build();
    Ok(())
}

fn main() {
    let _ = caller;
}
