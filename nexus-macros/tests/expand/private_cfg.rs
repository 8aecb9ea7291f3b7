//! A private contract with a `#[cfg]`-gated operation and a raw identifier.

#[nexus_service]
trait Inventory {
    async fn r#type(&self, ctx: OperationContext, sku: String) -> OperationResult<u32>;
    #[cfg(feature = "restock")]
    async fn restock(&self, ctx: OperationContext, sku: String) -> OperationResult<()>;
}
