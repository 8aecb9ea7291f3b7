//! An invalid contract: the error, the trait as written, and stubs of the generated items.
pub trait Orders {
    async fn place(
        &self,
        ctx: OperationContext,
        order: Order,
    ) -> OperationResult<String>;
    fn broken(&self, ctx: OperationContext, order: Order) -> OperationResult<u32>;
}
///Operation descriptors of the `orders.v1` Nexus service, one unit struct per operation.
pub mod orders {
    ///The `place` operation of the `orders.v1` service (method [`Orders::place`](super::Orders::place)).
    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::default::Default,
        ::core::cmp::PartialEq,
        ::core::cmp::Eq,
        ::core::hash::Hash
    )]
    pub struct Place;
    #[doc(hidden)]
    pub struct Broken;
}
impl ::nexus_runtime::Operation for orders::Place {
    type Service = OrdersService;
    type Input = <Order as ::nexus_runtime::__private::IsPayload>::Type;
    type Output = <String as ::nexus_runtime::__private::IsPayload>::Type;
    const NAME: &'static str = "place";
    const DESCRIPTION: &'static str = "";
}
///The `orders.v1` Nexus service: its wire name and definition (see [`Orders`]), and [`OrdersService::handler`] to serve an implementation.
#[derive(
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::fmt::Debug,
    ::core::default::Default,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash
)]
pub struct OrdersService;
impl ::nexus_runtime::Service for OrdersService {
    const NAME: &'static str = "orders.v1";
    const DESCRIPTION: &'static str = "";
    fn definition() -> ::nexus_runtime::definition::Definition {
        let mut builder = ::nexus_runtime::definition::DefinitionBuilder::new::<Self>();
        {
            builder = builder.operation::<orders::Place>();
        }
        builder.build()
    }
}
/**Typed caller stub of the `orders.v1` Nexus service (see [`Orders`]).

Each method returns a [`Call`](::nexus_runtime::Call): `.await` it for the result (sync or async alike), or `.start()` it for a handle with the operation token, `result()` and `cancel()`.*/
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
pub struct OrdersClient {
    inner: ::nexus_runtime::ServiceClient,
}
impl OrdersClient {
    /// A stub calling the service on `endpoint` through `client`.
    pub fn new(
        client: ::nexus_runtime::Client,
        endpoint: impl ::core::convert::Into<::nexus_runtime::__private::String>,
    ) -> Self {
        Self {
            inner: client.service::<OrdersService>(endpoint),
        }
    }
    /// The endpoint this stub calls.
    pub fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }
    /// The untyped service client underneath.
    pub fn service_client(&self) -> &::nexus_runtime::ServiceClient {
        &self.inner
    }
    ///Calls the `place` operation.
    pub fn place(&self, order: Order) -> ::nexus_runtime::Call<orders::Place> {
        self.inner.call::<orders::Place>(order)
    }
    #[doc(hidden)]
    pub fn broken<__Output>(
        &self,
        _input: impl ::core::marker::Sized,
    ) -> ::nexus_runtime::__private::InvalidCall<__Output> {
        ::nexus_runtime::__private::InvalidCall::new()
    }
}
impl OrdersService {
    #[doc(hidden)]
    pub fn handler<H>(_handler: H) -> ::nexus_runtime::__private::InvalidHandler {
        ::nexus_runtime::__private::InvalidHandler
    }
    #[doc(hidden)]
    pub fn handler_arc<H>(
        _handler: ::nexus_runtime::__private::Arc<H>,
    ) -> ::nexus_runtime::__private::InvalidHandler {
        ::nexus_runtime::__private::InvalidHandler
    }
}
::core::compile_error! {
    "operation `broken` must be an `async fn`; write `async fn broken(...)`"
}
