use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders<T> {
    async fn place(&self, ctx: OperationContext, input: T) -> OperationResult<u64>;
}

struct Shop;

impl Orders<String> for Shop {
    async fn place(&self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
