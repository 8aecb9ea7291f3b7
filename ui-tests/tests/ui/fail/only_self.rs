use nexus_runtime::{OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self) -> OperationResult<u64>;
}

struct Shop;

impl Orders for Shop {
    async fn place(&self) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
