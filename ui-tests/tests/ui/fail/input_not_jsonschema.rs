use nexus_runtime::{OperationContext, OperationResult, nexus_service};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
}

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: Order) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, _input: Order) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
