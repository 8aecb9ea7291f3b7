//! A contract with an input, a unit operation and a renamed operation.
/// Takes orders.
pub trait Orders {
    /// Places an order.
    fn place_order(
        &self,
        ctx: OperationContext,
        order: Order,
    ) -> impl ::core::future::Future<
        Output = OperationResult<Receipt>,
    > + ::core::marker::Send;
    /// Cancels every open order.
    fn cancel_all(
        &self,
        ctx: OperationContext,
    ) -> impl ::core::future::Future<
        Output = OperationResult<()>,
    > + ::core::marker::Send;
}
///Operation descriptors of the `orders.v1` Nexus service, one unit struct per operation.
pub mod orders {
    ///The `placeOrder` operation of the `orders.v1` service (method [`Orders::place_order`](super::Orders::place_order)).
    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::default::Default,
        ::core::cmp::PartialEq,
        ::core::cmp::Eq,
        ::core::hash::Hash
    )]
    pub struct PlaceOrder;
    ///The `cancel-all` operation of the `orders.v1` service (method [`Orders::cancel_all`](super::Orders::cancel_all)).
    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::default::Default,
        ::core::cmp::PartialEq,
        ::core::cmp::Eq,
        ::core::hash::Hash
    )]
    pub struct CancelAll;
}
impl ::nexus_runtime::Operation for orders::PlaceOrder {
    type Service = OrdersService;
    type Input = <Order as ::nexus_runtime::__private::IsPayload>::Type;
    type Output = <Receipt as ::nexus_runtime::__private::IsPayload>::Type;
    const NAME: &'static str = "placeOrder";
    const DESCRIPTION: &'static str = "Places an order.";
}
impl ::nexus_runtime::Operation for orders::CancelAll {
    type Service = OrdersService;
    type Input = ();
    type Output = <() as ::nexus_runtime::__private::IsPayload>::Type;
    const NAME: &'static str = "cancel-all";
    const DESCRIPTION: &'static str = "Cancels every open order.";
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
    const DESCRIPTION: &'static str = "Takes orders.";
    fn definition() -> ::nexus_runtime::definition::Definition {
        let mut builder = ::nexus_runtime::definition::DefinitionBuilder::new::<Self>();
        {
            builder = builder.operation::<orders::PlaceOrder>();
        }
        {
            builder = builder.operation::<orders::CancelAll>();
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
    /// Places an order.
    ///
    ///Calls the `placeOrder` operation.
    pub fn place_order(
        &self,
        order: Order,
    ) -> ::nexus_runtime::Call<orders::PlaceOrder> {
        self.inner.call::<orders::PlaceOrder>(order)
    }
    /// Cancels every open order.
    ///
    ///Calls the `cancel-all` operation.
    pub fn cancel_all(&self) -> ::nexus_runtime::Call<orders::CancelAll> {
        self.inner.call::<orders::CancelAll>(())
    }
}
const _: () = {
    struct __NexusHandler<H>(::nexus_runtime::__private::Arc<H>);
    impl<H> ::nexus_runtime::__private::ServiceHandler for __NexusHandler<H>
    where
        H: Orders + ::core::marker::Send + ::core::marker::Sync + 'static,
    {
        fn name(&self) -> &str {
            <OrdersService as ::nexus_runtime::Service>::NAME
        }
        fn operation_names(&self) -> ::nexus_runtime::__private::Vec<&str> {
            let mut names = ::nexus_runtime::__private::Vec::new();
            names.push("placeOrder");
            names.push("cancel-all");
            names
        }
        fn start(
            &self,
            operation: &str,
            ctx: ::nexus_runtime::OperationContext,
            input: ::nexus_runtime::__private::Content,
        ) -> ::core::option::Option<::nexus_runtime::__private::StartFuture> {
            match operation {
                "placeOrder" => {
                    let handler = ::core::clone::Clone::clone(&self.0);
                    ::core::option::Option::Some(
                        ::nexus_runtime::__private::decode_input::<
                            orders::PlaceOrder,
                            _,
                        >(
                            ctx,
                            input,
                            ::nexus_runtime::__private::encode_output::<
                                orders::PlaceOrder,
                                _,
                                _,
                                _,
                            >(move |ctx, input| async move {
                                Orders::place_order(&*handler, ctx, input).await
                            }),
                        ),
                    )
                }
                "cancel-all" => {
                    let handler = ::core::clone::Clone::clone(&self.0);
                    ::core::option::Option::Some(
                        ::nexus_runtime::__private::decode_input::<
                            orders::CancelAll,
                            _,
                        >(
                            ctx,
                            input,
                            ::nexus_runtime::__private::encode_output::<
                                orders::CancelAll,
                                _,
                                _,
                                _,
                            >(move |ctx, _: ()| async move {
                                Orders::cancel_all(&*handler, ctx).await
                            }),
                        ),
                    )
                }
                _ => ::core::option::Option::None,
            }
        }
    }
    impl OrdersService {
        /// The dispatch table of this service over `handler`, to register with a
        /// dispatcher or server.
        pub fn handler<H>(handler: H) -> impl ::nexus_runtime::__private::ServiceHandler
        where
            H: Orders + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            __NexusHandler(::nexus_runtime::__private::Arc::new(handler))
        }
        /// Like [`handler`](Self::handler), for an implementation already in an `Arc`.
        pub fn handler_arc<H>(
            handler: ::nexus_runtime::__private::Arc<H>,
        ) -> impl ::nexus_runtime::__private::ServiceHandler
        where
            H: Orders + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            __NexusHandler(handler)
        }
    }
};
