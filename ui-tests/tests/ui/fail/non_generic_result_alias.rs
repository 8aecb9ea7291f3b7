use nexus_runtime::{OperationContext, nexus_service};

type OperationResult = nexus_runtime::OperationResult<u64>;

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: String) -> OperationResult;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, _input: String) -> OperationResult {
        Ok(1.into())
    }
}

fn main() {}
