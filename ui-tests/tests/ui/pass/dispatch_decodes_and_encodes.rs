//! The generated dispatch arm decodes the input and encodes the output: a well-formed start is
//! answered with the encoded output, an input that does not decode is a BAD_REQUEST naming the
//! operation, and an unknown operation is not found.

use nexus_runtime::codec::{self, Content};
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::{StartRequest, StartResponse};
use nexus_runtime::{OperationContext, OperationResult, StartError, nexus_service};

#[nexus_service(name = "math.v1")]
pub trait Math {
    async fn double(&self, ctx: OperationContext, input: u32) -> OperationResult<u64>;
}

struct Impl;

impl Math for Impl {
    async fn double(&self, _ctx: OperationContext, input: u32) -> OperationResult<u64> {
        Ok((u64::from(input) * 2).into())
    }
}

fn request(operation: &str, input: Content) -> StartRequest {
    StartRequest {
        service: "math.v1".into(),
        operation: operation.into(),
        request_id: "request-1".into(),
        headers: Default::default(),
        links: Vec::new(),
        callback: None,
        request_deadline: None,
        operation_timeout: None,
        input,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dispatcher = Dispatcher::builder().service(MathService::handler(Impl)).build();

    let input = codec::encode(&21u32).unwrap();
    match dispatcher.start(request("double", input)).await.unwrap() {
        StartResponse::Sync { output, .. } => assert_eq!(codec::decode::<u64>(&output).unwrap(), 42),
        other => panic!("expected a sync answer, got {other:?}"),
    }

    let input = Content::new("application/json", "\"not a number\"");
    match dispatcher.start(request("double", input)).await {
        Err(StartError::Handler(error)) => {
            assert_eq!(error.error_type, HandlerErrorType::BadRequest);
            assert!(error.message.contains("`double`"), "{}", error.message);
        }
        other => panic!("expected BAD_REQUEST, got {other:?}"),
    }

    let input = codec::encode(&1u32).unwrap();
    match dispatcher.start(request("triple", input)).await {
        Err(StartError::Handler(error)) => assert_eq!(error.error_type, HandlerErrorType::NotFound),
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
}
