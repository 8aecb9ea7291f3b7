use nexus_runtime::{OperationContext, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: String) -> Result<u64, String>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, _input: String) -> Result<u64, String> {
        Ok(1)
    }
}

fn main() {}
