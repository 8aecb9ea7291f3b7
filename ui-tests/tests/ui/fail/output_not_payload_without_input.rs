use nexus_runtime::{OperationContext, OperationResult, nexus_service};

pub struct Receipt {
    pub id: u64,
}

#[nexus_service]
pub trait Orders {
    async fn last_receipt(&self, ctx: OperationContext) -> OperationResult<Receipt>;
}

struct Shop;

impl Orders for Shop {
    async fn last_receipt(&self, _ctx: OperationContext) -> OperationResult<Receipt> {
        Ok(Receipt { id: 1 }.into())
    }
}

fn main() {}
