//! A start request's cancellation signal, which its operation method and the calls the method
//! makes inherit: quiet while the request runs, fired when it ends (answered, or given up by its
//! caller).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_runtime::codec::Content;
use nexus_runtime::operation::CallScope;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::StartRequest;
use nexus_runtime::{HandlerError, OperationContext, OperationResult, nexus_service};

use crate::support::start_request;
use tokio_util::sync::CancellationToken;

/// A service whose methods keep what their request's scope gives them.
#[nexus_service(name = "scoped.v1")]
pub trait Scoped {
    /// Answers at once.
    async fn quick(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Answers only when its request is canceled, which it never sees while it runs.
    async fn stall(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// Keeps the signal each method saw through its call scope (what a call it made would inherit).
#[derive(Clone, Default)]
struct Desk {
    seen: Arc<Mutex<Vec<CancellationToken>>>,
}

impl Desk {
    fn keep_scope(&self, ctx: &OperationContext) {
        assert!(!ctx.is_cancelled(), "the request is running");
        let scope = CallScope::current().expect("a method runs inside its request's scope");
        assert!(!scope.cancel.is_cancelled());
        self.seen.lock().expect("seen").push(scope.cancel);
    }

    fn last(&self) -> CancellationToken {
        self.seen
            .lock()
            .expect("seen")
            .last()
            .cloned()
            .expect("a start")
    }
}

impl Scoped for Desk {
    async fn quick(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.keep_scope(&ctx);
        Ok(input.into())
    }

    async fn stall(&self, ctx: OperationContext, _input: String) -> OperationResult<String> {
        self.keep_scope(&ctx);
        ctx.cancelled().await;
        Err(HandlerError::internal("the request was canceled while it ran").into())
    }
}

/// A dispatcher serving a new desk, and the desk.
fn serve() -> (Desk, Dispatcher) {
    let desk = Desk::default();
    let dispatcher = Dispatcher::builder()
        .service(ScopedService::handler(desk.clone()))
        .build();
    (desk, dispatcher)
}

fn request(operation: &str) -> StartRequest {
    start_request(
        "scoped.v1",
        operation,
        Content::new("application/json", "\"x\""),
    )
}

#[tokio::test(start_paused = true)]
async fn the_signal_fires_when_the_request_is_answered() {
    let (desk, dispatcher) = serve();
    dispatcher.start(request("quick")).await.expect("answered");
    assert!(desk.last().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn the_signal_fires_when_the_caller_gives_up() {
    let (desk, dispatcher) = serve();
    let given_up =
        tokio::time::timeout(Duration::from_secs(1), dispatcher.start(request("stall"))).await;
    assert!(given_up.is_err(), "the method never answers by itself");
    assert!(desk.last().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_request_deadline_cancels_the_method_and_answers_upstream_timeout() {
    let (desk, dispatcher) = serve();
    let mut stalled = request("stall");
    stalled.request_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(2));
    let answer = dispatcher.start(stalled).await;
    let Err(nexus_runtime::StartError::Handler(e)) = answer else {
        panic!("expected UPSTREAM_TIMEOUT, got {answer:?}");
    };
    assert_eq!(
        e.error_type,
        nexus_runtime::error::HandlerErrorType::UpstreamTimeout
    );
    assert!(desk.last().is_cancelled());
}
