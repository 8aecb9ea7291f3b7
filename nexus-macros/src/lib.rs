//! The `#[nexus_service]` attribute macro of nexus-rs: it turns a trait into a typed Nexus
//! service contract. Use it through `nexus_runtime::nexus_service` (the runtime re-exports it);
//! [`nexus_service`] documents what it generates.
//!
//! The crate reads as a pipeline:
//! `attrs` (darling) → `model` (a validated service, errors collected with spans) →
//! `render` (trait, descriptors, client, handler, definition).
//! On any error the user's trait is still emitted, with stubs of the generated items, so one
//! mistake gives one compile error.

mod attrs;
mod diagnostics;
mod docs;
#[cfg(test)]
mod expand_snapshots;
mod model;
mod naming;
mod render;

use proc_macro::TokenStream;

/// Turns a trait into a Nexus service contract: a typed caller stub, a dispatch table for the
/// handler, one descriptor per operation and the service's JSON definition.
///
/// Each method of the trait is an operation, written as
/// `async fn name(&self, ctx: OperationContext[, input: Input]) -> OperationResult<Output>`:
/// the input (optional) and the output (`()` for none) are payloads, types that implement
/// `serde::Serialize`, `serde::Deserialize` and `schemars::JsonSchema` and own their data. Doc
/// comments on the trait and its methods become the descriptions of the service and its
/// operations in the definition.
///
/// # Attributes
///
/// | attribute | where | what |
/// |---|---|---|
/// | `name = "fraud.v1"` | `#[nexus_service(...)]` | the service's wire name; default: the trait's name |
/// | `crate = "::path::to::runtime"` | `#[nexus_service(...)]` | where the runtime crate is, when it is not a dependency named in Cargo.toml (a re-export, for instance); default: the package `nexus-rpc-runtime` as Cargo.toml depends on it: `::nexus_runtime` (its library's name), or the name it is given there |
/// | `#[operation(name = "checkTransaction")]` | on a method | the operation's wire name; default: the method's name in lowerCamelCase |
///
/// Wire names are checked at compile time (not empty, not too long, no control characters), and so is
/// every method's shape: each mistake is one compile error that says what to write instead.
///
/// # Generated items
///
/// For `pub trait Fraud` with `#[nexus_service(name = "fraud.v1")]`, beside the trait:
///
/// | item | what it is |
/// |---|---|
/// | `trait Fraud` | the trait as written, each `async fn` declaring its future `Send` (`fn op(..) -> impl Future<Output = ..> + Send`); the handler team implements it with plain `async fn`s |
/// | `struct FraudClient` | the typed caller stub: `FraudClient::new(client, "endpoint")`, then one method per operation taking its input and returning a `Call` (`.await` it for the result, sync or async alike, or `.start()` it for a handle with the token, `result()` and `cancel()`) |
/// | `struct FraudService` | the service descriptor: `Service::NAME` (`"fraud.v1"`), `Service::DESCRIPTION`, `Service::definition()` (the JSON definition, with a JSON Schema per input and output); `FraudService::handler(implementation)` (and `handler_arc` for an `Arc`) makes the dispatch table, an object-safe `ServiceHandler` to give a `Dispatcher` |
/// | `mod fraud` | the descriptors, named after the trait in snake_case: one unit struct per operation, named after the method in UpperCamelCase (`fraud::CheckTransaction`), implementing `Operation` (`Input`, `Output`, `NAME`, `Service`), for generic code such as `client.attach::<fraud::CheckTransaction>(id)` |
///
/// The items have the trait's visibility.
///
/// # Example
///
/// ```
/// use nexus_runtime::{HandlerError, OperationContext, OperationResult, Operation, Service};
/// use nexus_runtime::{nexus_service, service::Dispatcher, transport::InProcessTransport};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// /// An order to place.
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// pub struct Order { pub item: String, pub quantity: u32 }
///
/// /// The receipt of a placed order.
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// pub struct Receipt { pub order_id: String }
///
/// /// Takes orders.
/// #[nexus_service(name = "orders.v1")]
/// pub trait Orders {
///     /// Places an order (wire name `placeOrder`).
///     async fn place_order(&self, ctx: OperationContext, order: Order) -> OperationResult<Receipt>;
///     /// Cancels every open order: no input, no output.
///     #[operation(name = "cancel-all")]
///     async fn cancel_all(&self, ctx: OperationContext) -> OperationResult<()>;
/// }
///
/// // The handler team implements the trait...
/// struct Shop;
/// impl Orders for Shop {
///     async fn place_order(&self, _ctx: OperationContext, order: Order) -> OperationResult<Receipt> {
///         if order.quantity == 0 {
///             return Err(HandlerError::bad_request("`quantity` must be at least 1").into());
///         }
///         Ok(Receipt { order_id: format!("{}x{}", order.quantity, order.item) }.into())
///     }
///     async fn cancel_all(&self, _ctx: OperationContext) -> OperationResult<()> {
///         Ok(().into())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), nexus_runtime::CallError> {
/// // ...the descriptors name the service and its operations...
/// assert_eq!(OrdersService::NAME, "orders.v1");
/// assert_eq!(orders::PlaceOrder::NAME, "placeOrder");
/// assert_eq!(orders::CancelAll::NAME, "cancel-all");
/// assert_eq!(OrdersService::definition().services["orders.v1"].operations.len(), 2);
///
/// // ...and a caller calls it through the typed stub (here in-process; over HTTP with the
/// // runtime's `http` feature).
/// let dispatcher = Dispatcher::builder().service(OrdersService::handler(Shop)).build();
/// let client = nexus_runtime::Client::builder()
///     .endpoint("orders", InProcessTransport::new(dispatcher))
///     .build();
/// let orders = OrdersClient::new(client, "orders");
/// let receipt = orders.place_order(Order { item: "tea".into(), quantity: 2 }).await?;
/// assert_eq!(receipt.order_id, "2xtea");
/// orders.cancel_all().await?;
/// # Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn nexus_service(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into()).into()
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let item_trait: syn::ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        // Not a trait at all: say where the attribute goes. (A trait that does not parse keeps
        // syn's message, followed by the item as written so rustc reports the syntax error too.)
        Err(e) if !is_trait(&item) => {
            let message = format!(
                "{e}: `#[nexus_service]` goes on a trait whose methods are the operations, such as \
                 `pub trait Orders {{ async fn place(&self, ctx: OperationContext, input: Order) \
                 -> OperationResult<Receipt>; }}`"
            );
            let mut out = syn::Error::new(e.span(), message).to_compile_error();
            out.extend(item);
            return out;
        }
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    match model::Service::build(args, &item_trait) {
        Ok(service) => render::service(&service),
        Err(invalid) => {
            let mut out = render::trait_def::sanitized(&item_trait);
            out.extend(render::invalid(&invalid));
            out.extend(invalid.errors);
            out
        }
    }
}

/// Whether the item's top-level tokens include the `trait` keyword.
fn is_trait(item: &proc_macro2::TokenStream) -> bool {
    item.clone()
        .into_iter()
        .any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "trait"))
}
