//! A 3-level chain over HTTP on loopback for the trace tests: a caller calls `middle.v1`, whose
//! operations call `leaf.v1`; every level answers with the `traceparent` it received.
#![allow(dead_code, clippy::unwrap_used)]

use nexus_runtime::observe::TraceContext;
use nexus_runtime::security::CallbackGuard;
use nexus_runtime::server::{CallbackListener, HandlerServer, ServerHandle};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{Client, OperationContext, OperationResult, nexus_service};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `traceparent` each level saw.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Seen {
    /// What the middle level received.
    pub middle: Option<String>,
    /// What the leaf received.
    pub leaf: Option<String>,
}

/// The last level: answers with the `traceparent` it received.
#[nexus_service(name = "leaf.v1")]
pub trait Leaf {
    /// The `traceparent` of this request.
    async fn look(&self, ctx: OperationContext, input: String) -> OperationResult<Option<String>>;
}

/// The middle level: calls `leaf.v1` from inside its operations (sync and async).
#[nexus_service(name = "middle.v1")]
pub trait Middle {
    /// Calls the leaf while answering.
    async fn relay(&self, ctx: OperationContext, input: String) -> OperationResult<Seen>;
    /// Calls the leaf from its async work.
    async fn relay_async(&self, ctx: OperationContext, input: String) -> OperationResult<Seen>;
}

struct LeafDesk;

impl Leaf for LeafDesk {
    async fn look(&self, ctx: OperationContext, _input: String) -> OperationResult<Option<String>> {
        Ok(ctx.header("traceparent").map(str::to_owned).into())
    }
}

struct MiddleDesk {
    leaf: LeafClient,
}

impl Middle for MiddleDesk {
    async fn relay(&self, ctx: OperationContext, input: String) -> OperationResult<Seen> {
        let leaf = self
            .leaf
            .look(input)
            .await
            .map_err(|e| nexus_runtime::HandlerError::internal(e.to_string()))?;
        let middle = ctx.header("traceparent").map(str::to_owned);
        Ok(Seen { middle, leaf }.into())
    }

    async fn relay_async(&self, ctx: OperationContext, input: String) -> OperationResult<Seen> {
        let leaf = self.leaf.clone();
        let middle = ctx.header("traceparent").map(str::to_owned);
        ctx.start_async(move |_work| async move {
            let leaf = leaf
                .look(input)
                .await
                .map_err(|e| nexus_runtime::OperationError::failed(e.to_string()))?;
            Ok(Seen { middle, leaf })
        })
    }
}

pub async fn serve(dispatcher: Dispatcher) -> ServerHandle {
    HandlerServer::new(dispatcher)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

/// The leaf and middle servers; the middle's client calls the leaf over HTTP.
pub async fn chain() -> (ServerHandle, ServerHandle) {
    let leaf = serve(
        Dispatcher::builder()
            .service(LeafService::handler(LeafDesk))
            .callback_guard(CallbackGuard::loopback())
            .build(),
    )
    .await;
    let callbacks = CallbackListener::bind_loopback().await.unwrap();
    let to_leaf = Client::builder()
        .endpoint("leaf", HttpTransport::new(leaf.url()).unwrap())
        .callback_url(callbacks.callback_url())
        .build();
    // Lives as long as the test's runtime.
    std::mem::forget(callbacks.serve(to_leaf.clone()).unwrap());
    let middle = serve(
        Dispatcher::builder()
            .service(MiddleService::handler(MiddleDesk {
                leaf: LeafClient::new(to_leaf, "leaf"),
            }))
            .callback_guard(CallbackGuard::loopback())
            .build(),
    )
    .await;
    (leaf, middle)
}

pub const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

pub fn parse(traceparent: Option<&str>) -> TraceContext {
    TraceContext::parse(traceparent.expect("a traceparent"), None).expect("a valid traceparent")
}
