use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    #[operation(name = "orderV2")]
    async fn order_v2(&self, ctx: OperationContext, input: String) -> OperationResult<u64>;
    #[operation(name = "orderV2Legacy")]
    async fn order_v_2(&self, ctx: OperationContext, input: String) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn order_v2(&self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(2.into())
    }
    async fn order_v_2(&self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(2.into())
    }
}

fn main() {}
