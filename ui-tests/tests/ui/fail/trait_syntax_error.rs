// A Rust syntax error in the trait: rustc's parser reports it first, with its fix; syn's error
// follows (kept so that nothing fails silently should syn reject what rustc accepts).
use nexus_runtime::{OperationContext, OperationResult, nexus_service};

#[nexus_service]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, input: String) -> OperationResult<u64>
}

fn main() {}
