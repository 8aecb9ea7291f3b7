//! Wire names with `/`, spaces and dots are used as written and called in-process.

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, Operation, OperationContext, OperationResult, Service, nexus_service};

#[nexus_service(name = "Ser/vic e")]
pub trait Odd {
    #[operation(name = "i need to/be escaped")]
    async fn escaped(&self, ctx: OperationContext, input: String) -> OperationResult<String>;

    #[operation(name = "with.dots.v2")]
    async fn dotted(&self, ctx: OperationContext) -> OperationResult<u8>;
}

struct Impl;

impl Odd for Impl {
    async fn escaped(&self, _ctx: OperationContext, input: String) -> OperationResult<String> {
        Ok(format!("<{input}>").into())
    }

    async fn dotted(&self, _ctx: OperationContext) -> OperationResult<u8> {
        Ok(2.into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(OddService::NAME, "Ser/vic e");
    assert_eq!(odd::Escaped::NAME, "i need to/be escaped");
    assert_eq!(odd::Dotted::NAME, "with.dots.v2");
    let definition = Definition::of::<OddService>();
    let operations = &definition.services["Ser/vic e"].operations;
    assert!(operations.contains_key("i need to/be escaped"));
    assert!(operations.contains_key("with.dots.v2"));

    let dispatcher = Dispatcher::builder().service(OddService::handler(Impl)).build();
    let client = Client::builder()
        .endpoint("odd endpoint", InProcessTransport::new(dispatcher))
        .build();
    let odd = OddClient::new(client, "odd endpoint");
    assert_eq!(odd.escaped("a b/c".into()).await.unwrap(), "<a b/c>");
    assert_eq!(odd.dotted().await.unwrap(), 2);
}
