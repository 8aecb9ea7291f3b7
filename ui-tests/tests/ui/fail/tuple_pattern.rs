use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, (item, quantity): (String, u32)) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, _input: (String, u32)) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
