//! Async operations completed elsewhere (`AsyncOperation::completed_elsewhere`, what workflow-run
//! operations answer): the caller gets the token, nothing runs or is recorded here, with or
//! without a store.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nexus_runtime::codec::{self, Content};
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::operation::{AsyncOperation, OperationStart};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::MemoryStore;
use nexus_runtime::transport::{CancelRequest, StartRequest, StartResponse};
use nexus_runtime::{Link, OperationContext, OperationResult, StartError, nexus_service};

/// Operations whose completion someone else sends.
#[nexus_service(name = "elsewhere.v1")]
pub trait Elsewhere {
    /// Answers with the input as its token.
    async fn run(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Elsewhere for Runs {
    async fn run(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        ctx.add_link(Link::new(
            "temporal:///namespaces/ns/workflows/wf/run/history",
            "wf",
        ));
        Ok(OperationStart::Async(AsyncOperation::completed_elsewhere(
            input,
        )))
    }
}

fn start(token: &str, request_id: &str) -> StartRequest {
    StartRequest {
        service: "elsewhere.v1".into(),
        operation: "run".into(),
        request_id: request_id.into(),
        headers: Default::default(),
        links: Vec::new(),
        callback: None,
        request_deadline: None,
        operation_timeout: None,
        input: codec::encode(&token.to_owned()).unwrap(),
    }
}

async fn answers_the_token_and_runs_nothing(dispatcher: Dispatcher, runs: Runs) {
    for attempt in 1..=2 {
        match dispatcher.start(start("wf-token", "req-1")).await.unwrap() {
            StartResponse::Async { token, links } => {
                assert_eq!(token, "wf-token");
                assert_eq!(links.len(), 1);
            }
            other => panic!("expected an async answer, got {other:?}"),
        }
        // Not recorded: a retry runs the method again (the workflow start deduplicates itself).
        assert_eq!(runs.0.load(Ordering::SeqCst), attempt);
        assert_eq!(dispatcher.running_operations(), 0);
    }
    // Cancel requests for the token are for whoever completes the operation.
    let cancel = CancelRequest {
        service: "elsewhere.v1".into(),
        operation: "run".into(),
        token: "wf-token".into(),
        headers: Default::default(),
        request_deadline: None,
    };
    let error = dispatcher.cancel(cancel).await.unwrap_err();
    assert_eq!(error.error_type, HandlerErrorType::NotFound);
    // An empty token is the handler's bug.
    match dispatcher.start(start("", "req-2")).await {
        Err(StartError::Handler(e)) => assert_eq!(e.error_type, HandlerErrorType::Internal),
        other => panic!("expected INTERNAL, got {other:?}"),
    }
}

#[tokio::test]
async fn without_a_store() {
    let runs = Runs::default();
    let dispatcher = Dispatcher::builder()
        .service(ElsewhereService::handler(runs.clone()))
        .build();
    answers_the_token_and_runs_nothing(dispatcher, runs).await;
}

#[tokio::test]
async fn with_a_store() {
    let runs = Runs::default();
    let dispatcher = Dispatcher::builder()
        .service(ElsewhereService::handler(runs.clone()))
        .store(Arc::new(MemoryStore::new()))
        .build();
    answers_the_token_and_runs_nothing(dispatcher, runs).await;
}

#[test]
fn is_declared() {
    let op = AsyncOperation::<Content>::completed_elsewhere("t");
    assert!(op.is_completed_elsewhere());
    assert!(
        !AsyncOperation::<Content>::new(|_| async { Ok(Content::empty()) })
            .is_completed_elsewhere()
    );
}
