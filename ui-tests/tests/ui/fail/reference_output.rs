use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: String) -> OperationResult<&'static str>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, _input: String) -> OperationResult<&'static str> {
        Ok("placed".into())
    }
}

fn main() {}
