use nexus_runtime::{OperationContext, OperationResult, nexus_service};

pub struct Order {
    pub id: u64,
}

pub struct Receipt {
    pub id: u64,
}

// Two types without derives, two errors: one at each type.
#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: Order) -> OperationResult<Receipt>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self, _ctx: OperationContext, input: Order) -> OperationResult<Receipt> {
        Ok(Receipt { id: input.id }.into())
    }
}

fn main() {}
