//! `#[cfg]` on an operation: a cfg'd-out operation is in none of the generated items, a cfg'd-in
//! one is in all of them.

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, OperationContext, OperationResult, nexus_service};

#[nexus_service(name = "flags")]
pub trait Flags {
    async fn always(&self, ctx: OperationContext) -> OperationResult<u32>;

    #[cfg(all())]
    async fn enabled(&self, ctx: OperationContext, input: u32) -> OperationResult<u32>;

    /// Compiled out: `Impl` does not implement it, and no descriptor, client method, dispatch
    /// arm or definition entry refers to it.
    #[cfg(any())]
    async fn disabled(&self, ctx: OperationContext, input: NotEvenAType) -> OperationResult<u32>;
}

struct Impl;

impl Flags for Impl {
    async fn always(&self, _ctx: OperationContext) -> OperationResult<u32> {
        Ok(1.into())
    }

    async fn enabled(&self, _ctx: OperationContext, input: u32) -> OperationResult<u32> {
        Ok((input * 2).into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let definition = Definition::of::<FlagsService>();
    let names: Vec<&str> = definition.services["flags"]
        .operations
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["always", "enabled"]);
    let _enabled: flags::Enabled = flags::Enabled;

    let handler = FlagsService::handler(Impl);
    assert_eq!(
        nexus_runtime::service::ServiceHandler::operation_names(&handler),
        ["always", "enabled"]
    );
    let dispatcher = Dispatcher::builder().service(handler).build();
    let client = Client::builder()
        .endpoint("flags", InProcessTransport::new(dispatcher))
        .build();
    let flags = FlagsClient::new(client, "flags");
    assert_eq!(flags.always().await.unwrap(), 1);
    assert_eq!(flags.enabled(21).await.unwrap(), 42);
}
