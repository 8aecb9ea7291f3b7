use nexus_runtime::{OperationContext, OperationResult, nexus_service};

macro_rules! operation {
    ($name:ident) => {
        async fn $name(&self, ctx: OperationContext, input: String) -> OperationResult<u64>;
    };
}

#[nexus_service]
pub trait Orders {
    operation!(place);
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, _input: String) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
