use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place<T>(&self, ctx: OperationContext, input: T) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place<T>(&self, _ctx: OperationContext, _input: T) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
