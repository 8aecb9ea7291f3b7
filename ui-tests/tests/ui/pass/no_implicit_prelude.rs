//! Hygiene: the whole file is under `#![no_implicit_prelude]`, so the generated code must use
//! absolute paths only. The user's own code here does too.

#![no_implicit_prelude]

#[::nexus_runtime::nexus_service(name = "hygiene.v1")]
pub trait Hygiene {
    /// Echoes its input.
    async fn echo(
        &self,
        ctx: ::nexus_runtime::OperationContext,
        input: ::std::string::String,
    ) -> ::nexus_runtime::OperationResult<::std::string::String>;

    async fn ping(&self, ctx: ::nexus_runtime::OperationContext)
    -> ::nexus_runtime::OperationResult<()>;

    async fn sum(
        &self,
        ctx: ::nexus_runtime::OperationContext,
        input: ::std::vec::Vec<u32>,
    ) -> ::nexus_runtime::OperationResult<::std::option::Option<u32>>;
}

struct Impl;

impl Hygiene for Impl {
    async fn echo(
        &self,
        _ctx: ::nexus_runtime::OperationContext,
        input: ::std::string::String,
    ) -> ::nexus_runtime::OperationResult<::std::string::String> {
        ::core::result::Result::Ok(::core::convert::From::from(input))
    }

    async fn ping(
        &self,
        _ctx: ::nexus_runtime::OperationContext,
    ) -> ::nexus_runtime::OperationResult<()> {
        ::core::result::Result::Ok(::core::convert::From::from(()))
    }

    async fn sum(
        &self,
        _ctx: ::nexus_runtime::OperationContext,
        input: ::std::vec::Vec<u32>,
    ) -> ::nexus_runtime::OperationResult<::std::option::Option<u32>> {
        let total = ::core::iter::Iterator::sum(::core::iter::IntoIterator::into_iter(input));
        ::core::result::Result::Ok(::core::convert::From::from(::std::option::Option::Some(total)))
    }
}

fn main() {
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let definition = ::nexus_runtime::definition::Definition::of::<HygieneService>();
        ::std::assert_eq!(definition.services["hygiene.v1"].operations.len(), 3);

        let dispatcher = ::nexus_runtime::service::Dispatcher::builder()
            .service(HygieneService::handler(Impl))
            .build();
        let client = ::nexus_runtime::Client::builder()
            .endpoint(
                "hygiene",
                ::nexus_runtime::transport::InProcessTransport::new(dispatcher),
            )
            .build();
        let hygiene = HygieneClient::new(client, "hygiene");
        let echoed = hygiene
            .echo(::std::borrow::ToOwned::to_owned("hi"))
            .await
            .expect("echo");
        ::std::assert_eq!(echoed, "hi");
        hygiene.ping().await.expect("ping");
        let sum = hygiene.sum(::std::vec![1, 2, 3]).await.expect("sum");
        ::std::assert_eq!(sum, ::std::option::Option::Some(6));
    });
}
