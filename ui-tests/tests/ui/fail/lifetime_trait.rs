// Two mistakes, two errors: the lifetime parameter, and the borrowed input it was added for.
use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders<'a> {
    async fn place(&self, ctx: OperationContext, input: &'a str) -> OperationResult<u64>;
}

struct Shop;

impl<'a> Orders<'a> for Shop {
    async fn place(&self, _ctx: OperationContext, _input: &'a str) -> OperationResult<u64> {
        Ok(1.into())
    }
}

fn main() {}
