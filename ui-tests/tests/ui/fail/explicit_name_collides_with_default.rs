use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn cancel(&self, ctx: OperationContext, input: u64) -> OperationResult<()>;
    #[operation(name = "cancel")]
    async fn cancel_all(&self, ctx: OperationContext) -> OperationResult<()>;
}

struct Shop;

impl Orders for Shop {
    async fn cancel(&self, _ctx: OperationContext, _input: u64) -> OperationResult<()> {
        Ok(().into())
    }
    async fn cancel_all(&self, _ctx: OperationContext) -> OperationResult<()> {
        Ok(().into())
    }
}

fn main() {}
