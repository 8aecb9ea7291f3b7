use nexus_runtime::{OperationContext, OperationResult, nexus_service};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
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
