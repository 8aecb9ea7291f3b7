use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    #[operation(name = "place")]
    async fn place_order(&self, ctx: OperationContext, input: String) -> OperationResult<u64>;
    #[operation(name = "place")]
    async fn place_bulk_order(&self, ctx: OperationContext, input: Vec<String>) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place_order(&self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(1.into())
    }
    async fn place_bulk_order(&self, _ctx: OperationContext, input: Vec<String>) -> OperationResult<u64> {
        Ok((input.len() as u64).into())
    }
}

fn main() {}
