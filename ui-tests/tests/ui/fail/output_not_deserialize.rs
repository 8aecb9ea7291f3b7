use nexus_runtime::{OperationContext, OperationResult, nexus_service};
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema)]
pub struct Order {
    pub id: u64,
}

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: u64) -> OperationResult<Order>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, input: u64) -> OperationResult<Order> {
        Ok(Order { id: input }.into())
    }
}

fn main() {}
