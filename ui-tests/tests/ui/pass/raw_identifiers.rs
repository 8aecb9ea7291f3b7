//! Raw identifiers as method names: the wire name drops the `r#`.

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, Operation, OperationContext, OperationResult, nexus_service};

#[nexus_service(name = "keywords")]
pub trait Keywords {
    async fn r#type(&self, ctx: OperationContext, r#in: String) -> OperationResult<String>;
    async fn r#async(&self, ctx: OperationContext) -> OperationResult<u32>;
    async fn r#match_all(&self, ctx: OperationContext, input: Vec<String>) -> OperationResult<usize>;
}

struct Impl;

impl Keywords for Impl {
    async fn r#type(&self, _ctx: OperationContext, r#in: String) -> OperationResult<String> {
        Ok(format!("type of {in}", in = r#in).into())
    }

    async fn r#async(&self, _ctx: OperationContext) -> OperationResult<u32> {
        Ok(7.into())
    }

    async fn match_all(&self, _ctx: OperationContext, input: Vec<String>) -> OperationResult<usize> {
        Ok(input.len().into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(keywords::Type::NAME, "type");
    assert_eq!(keywords::Async::NAME, "async");
    assert_eq!(keywords::MatchAll::NAME, "matchAll");
    let definition = Definition::of::<KeywordsService>();
    let names: Vec<&str> = definition.services["keywords"]
        .operations
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["async", "matchAll", "type"]);

    let dispatcher = Dispatcher::builder().service(KeywordsService::handler(Impl)).build();
    let client = Client::builder()
        .endpoint("kw", InProcessTransport::new(dispatcher))
        .build();
    let keywords = KeywordsClient::new(client, "kw");
    assert_eq!(keywords.r#type("x".into()).await.unwrap(), "type of x");
    assert_eq!(keywords.r#async().await.unwrap(), 7);
    assert_eq!(keywords.match_all(vec!["a".into(), "b".into()]).await.unwrap(), 2);
}
