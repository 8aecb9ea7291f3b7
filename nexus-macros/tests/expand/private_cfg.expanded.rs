//! A private contract with a `#[cfg]`-gated operation and a raw identifier.
trait Inventory {
    fn r#type(
        &self,
        ctx: OperationContext,
        sku: String,
    ) -> impl ::core::future::Future<
        Output = OperationResult<u32>,
    > + ::core::marker::Send;
    #[cfg(feature = "restock")]
    fn restock(
        &self,
        ctx: OperationContext,
        sku: String,
    ) -> impl ::core::future::Future<
        Output = OperationResult<()>,
    > + ::core::marker::Send;
}
///Operation descriptors of the `Inventory` Nexus service, one unit struct per operation.
mod inventory {
    ///The `type` operation of the `Inventory` service (method [`Inventory::r#type`](super::Inventory::r#type)).
    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::default::Default,
        ::core::cmp::PartialEq,
        ::core::cmp::Eq,
        ::core::hash::Hash
    )]
    pub(super) struct Type;
    #[cfg(feature = "restock")]
    ///The `restock` operation of the `Inventory` service (method [`Inventory::restock`](super::Inventory::restock)).
    #[derive(
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::fmt::Debug,
        ::core::default::Default,
        ::core::cmp::PartialEq,
        ::core::cmp::Eq,
        ::core::hash::Hash
    )]
    pub(super) struct Restock;
}
impl ::nexus_runtime::Operation for inventory::Type {
    type Service = InventoryService;
    type Input = <String as ::nexus_runtime::__private::IsPayload>::Type;
    type Output = <u32 as ::nexus_runtime::__private::IsPayload>::Type;
    const NAME: &'static str = "type";
    const DESCRIPTION: &'static str = "";
}
#[cfg(feature = "restock")]
impl ::nexus_runtime::Operation for inventory::Restock {
    type Service = InventoryService;
    type Input = <String as ::nexus_runtime::__private::IsPayload>::Type;
    type Output = <() as ::nexus_runtime::__private::IsPayload>::Type;
    const NAME: &'static str = "restock";
    const DESCRIPTION: &'static str = "";
}
///The `Inventory` Nexus service: its wire name and definition (see [`Inventory`]), and [`InventoryService::handler`] to serve an implementation.
#[derive(
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::fmt::Debug,
    ::core::default::Default,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash
)]
struct InventoryService;
impl ::nexus_runtime::Service for InventoryService {
    const NAME: &'static str = "Inventory";
    const DESCRIPTION: &'static str = "";
    fn definition() -> ::nexus_runtime::definition::Definition {
        let mut builder = ::nexus_runtime::definition::DefinitionBuilder::new::<Self>();
        {
            builder = builder.operation::<inventory::Type>();
        }
        #[cfg(feature = "restock")]
        {
            builder = builder.operation::<inventory::Restock>();
        }
        builder.build()
    }
}
/**Typed caller stub of the `Inventory` Nexus service (see [`Inventory`]).

Each method returns a [`Call`](::nexus_runtime::Call): `.await` it for the result (sync or async alike), or `.start()` it for a handle with the operation token, `result()` and `cancel()`.*/
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
struct InventoryClient {
    inner: ::nexus_runtime::ServiceClient,
}
impl InventoryClient {
    /// A stub calling the service on `endpoint` through `client`.
    pub fn new(
        client: ::nexus_runtime::Client,
        endpoint: impl ::core::convert::Into<::nexus_runtime::__private::String>,
    ) -> Self {
        Self {
            inner: client.service::<InventoryService>(endpoint),
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
    ///Calls the `type` operation.
    pub fn r#type(&self, sku: String) -> ::nexus_runtime::Call<inventory::Type> {
        self.inner.call::<inventory::Type>(sku)
    }
    #[cfg(feature = "restock")]
    ///Calls the `restock` operation.
    pub fn restock(&self, sku: String) -> ::nexus_runtime::Call<inventory::Restock> {
        self.inner.call::<inventory::Restock>(sku)
    }
}
const _: () = {
    struct __NexusHandler<H>(::nexus_runtime::__private::Arc<H>);
    impl<H> ::nexus_runtime::__private::ServiceHandler for __NexusHandler<H>
    where
        H: Inventory + ::core::marker::Send + ::core::marker::Sync + 'static,
    {
        fn name(&self) -> &str {
            <InventoryService as ::nexus_runtime::Service>::NAME
        }
        fn operation_names(&self) -> ::nexus_runtime::__private::Vec<&str> {
            let mut names = ::nexus_runtime::__private::Vec::new();
            names.push("type");
            #[cfg(feature = "restock")] names.push("restock");
            names
        }
        fn start(
            &self,
            operation: &str,
            ctx: ::nexus_runtime::OperationContext,
            input: ::nexus_runtime::__private::Content,
        ) -> ::core::option::Option<::nexus_runtime::__private::StartFuture> {
            match operation {
                "type" => {
                    let handler = ::core::clone::Clone::clone(&self.0);
                    ::core::option::Option::Some(
                        ::nexus_runtime::__private::decode_input::<
                            inventory::Type,
                            _,
                        >(
                            ctx,
                            input,
                            ::nexus_runtime::__private::encode_output::<
                                inventory::Type,
                                _,
                                _,
                                _,
                            >(move |ctx, input| async move {
                                Inventory::r#type(&*handler, ctx, input).await
                            }),
                        ),
                    )
                }
                #[cfg(feature = "restock")]
                "restock" => {
                    let handler = ::core::clone::Clone::clone(&self.0);
                    ::core::option::Option::Some(
                        ::nexus_runtime::__private::decode_input::<
                            inventory::Restock,
                            _,
                        >(
                            ctx,
                            input,
                            ::nexus_runtime::__private::encode_output::<
                                inventory::Restock,
                                _,
                                _,
                                _,
                            >(move |ctx, input| async move {
                                Inventory::restock(&*handler, ctx, input).await
                            }),
                        ),
                    )
                }
                _ => ::core::option::Option::None,
            }
        }
    }
    impl InventoryService {
        /// The dispatch table of this service over `handler`, to register with a
        /// dispatcher or server.
        pub fn handler<H>(handler: H) -> impl ::nexus_runtime::__private::ServiceHandler
        where
            H: Inventory + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            __NexusHandler(::nexus_runtime::__private::Arc::new(handler))
        }
        /// Like [`handler`](Self::handler), for an implementation already in an `Arc`.
        pub fn handler_arc<H>(
            handler: ::nexus_runtime::__private::Arc<H>,
        ) -> impl ::nexus_runtime::__private::ServiceHandler
        where
            H: Inventory + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            __NexusHandler(handler)
        }
    }
};
