use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn service_client(&self, ctx: OperationContext, input: String) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn service_client(&self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
