use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&mut self, ctx: OperationContext, input: String) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&mut self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
