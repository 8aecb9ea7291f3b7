use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, mut input: String) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, mut input: String) -> OperationResult<u64> {
        input.push('!');
        Ok(input.len() as u64).map(Into::into)
    }
}

fn main() {}
