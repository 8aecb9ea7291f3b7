use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: String) -> OperationResult<u64> {
        let _ = (ctx, input);
        Ok(1.into())
    }
}

struct Shop;

impl Orders for Shop {}

fn main() {}
