use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, ref input: String) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, input: String) -> OperationResult<u64> {
        Ok((input.len() as u64).into())
    }
}

fn main() {}
