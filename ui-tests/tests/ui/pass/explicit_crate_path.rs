//! `crate = "..."`: the runtime reached through a re-export (as a facade crate would do), with the
//! generated code using that path.

mod facade {
    pub use ::nexus_runtime::*;
}

use facade::definition::Definition;
use facade::service::Dispatcher;
use facade::transport::InProcessTransport;
use facade::{Client, OperationContext, OperationResult, Service};

#[facade::nexus_service(name = "facade.v1", crate = "crate::facade")]
pub trait Greeter {
    async fn hello(&self, ctx: OperationContext, name: String) -> OperationResult<String>;
}

struct Impl;

impl Greeter for Impl {
    async fn hello(&self, _ctx: OperationContext, name: String) -> OperationResult<String> {
        Ok(format!("hello {name}").into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(GreeterService::NAME, "facade.v1");
    assert!(Definition::of::<GreeterService>().services["facade.v1"].operations.contains_key("hello"));

    let dispatcher = Dispatcher::builder().service(GreeterService::handler(Impl)).build();
    let client = Client::builder()
        .endpoint("greeter", InProcessTransport::new(dispatcher))
        .build();
    let greeter = GreeterClient::new(client, "greeter");
    assert_eq!(greeter.hello("ada".into()).await.unwrap(), "hello ada");
}
