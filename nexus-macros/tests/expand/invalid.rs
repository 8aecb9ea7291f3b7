//! An invalid contract: the error, the trait as written, and stubs of the generated items.

#[nexus_service(name = "orders.v1")]
pub trait Orders {
    async fn place(&self, ctx: OperationContext, order: Order) -> OperationResult<String>;
    fn broken(&self, ctx: OperationContext, order: Order) -> OperationResult<u32>;
}
