//! A contract with an input, a unit operation and a renamed operation.

/// Takes orders.
#[nexus_service(name = "orders.v1")]
pub trait Orders {
    /// Places an order.
    async fn place_order(&self, ctx: OperationContext, order: Order) -> OperationResult<Receipt>;
    /// Cancels every open order.
    #[operation(name = "cancel-all")]
    async fn cancel_all(&self, ctx: OperationContext) -> OperationResult<()>;
}
