//! Listing a client's operations (`Client::operations`: filters, paging, what a handle shows,
//! links) and canceling one by id; a dispatcher's async operations and deliveries.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::client::{CALLER_LINK_TYPE, OperationFilter, OperationState};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::{self, AsyncQuery, AsyncState, MemoryStore, Store};
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{
    Client, Link, OperationContext, OperationError, OperationResult, nexus_service,
};

/// Waits.
#[nexus_service(name = "waits.v1")]
pub trait Waits {
    /// Runs until canceled.
    async fn wait(&self, ctx: OperationContext, input: u32) -> OperationResult<u32>;
    /// Answers at once.
    async fn now(&self, ctx: OperationContext, input: u32) -> OperationResult<u32>;
}

struct Waiter;

impl Waits for Waiter {
    async fn wait(&self, ctx: OperationContext, input: u32) -> OperationResult<u32> {
        ctx.add_link(Link::new("https://handler.example/runs/1", "handler.Run"));
        ctx.start_async(move |work| async move {
            work.cancelled().await;
            let _ = input;
            Err(OperationError::canceled("stopped"))
        })
    }
    async fn now(&self, _ctx: OperationContext, input: u32) -> OperationResult<u32> {
        Ok(input.into())
    }
}

fn dispatcher(store: Option<Arc<dyn Store>>) -> Dispatcher {
    let builder = Dispatcher::builder().service(WaitsService::handler(Waiter));
    match store {
        Some(store) => builder.store(store).build(),
        None => builder.build(),
    }
}

async fn check_listing(client: Client, waits: WaitsClient, durable: bool) {
    let mut handles = Vec::new();
    for n in 0..5 {
        handles.push(waits.wait(n).start().await.unwrap());
        // Distinct scheduled times, so the order is the order of the calls.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(waits.now(7).await.unwrap(), 7);

    let pending = client
        .operations(&OperationFilter::pending())
        .await
        .unwrap();
    let ids: Vec<_> = pending.operations.iter().map(|o| o.id).collect();
    let expected: Vec<_> = handles.iter().map(|h| h.operation_id()).collect();
    assert_eq!(ids, expected);
    assert_eq!(pending.next_cursor, None);
    let first = &pending.operations[0];
    assert_eq!(first.service, "waits.v1");
    assert_eq!(first.operation, "wait");
    assert_eq!(first.endpoint, "waits");
    assert_eq!(first.info.state, OperationState::Started);
    assert_eq!(first.info.attempt, 1);
    assert_eq!(first.info.token, handles[0].token().map(str::to_owned));
    assert_eq!(
        first.info.start_links,
        [Link::new("https://handler.example/runs/1", "handler.Run")]
    );
    if durable {
        assert_eq!(first.sent_links.len(), 1);
        assert_eq!(first.sent_links[0].link_type, CALLER_LINK_TYPE);
    }

    // Pages of two.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .operations(&OperationFilter {
                limit: 2,
                cursor: cursor.clone(),
                ..OperationFilter::pending()
            })
            .await
            .unwrap();
        seen.extend(page.operations.iter().map(|o| o.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // Filters by endpoint and service.
    let none = client
        .operations(&OperationFilter {
            endpoint: Some("elsewhere".into()),
            ..OperationFilter::default()
        })
        .await
        .unwrap();
    assert!(none.operations.is_empty());
    let by_service = client
        .operations(&OperationFilter {
            service: Some("waits.v1".into()),
            states: vec![store::OperationState::Started],
            ..OperationFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_service.operations.len(), 5);

    // Cancel by id, whatever its type: it ends canceled.
    client.cancel_operation(expected[1]).await.unwrap();
    let info = handles[1].wait_for(|info| info.state.is_terminal()).await;
    assert_eq!(info.state, OperationState::Canceled);
    let pending = client
        .operations(&OperationFilter::pending())
        .await
        .unwrap();
    assert_eq!(pending.operations.len(), 4);
    assert!(pending.operations.iter().all(|o| o.id != expected[1]));
    if durable {
        let canceled = client
            .operations(&OperationFilter {
                states: vec![store::OperationState::Canceled],
                ..OperationFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(canceled.operations[0].id, expected[1]);
    }
    assert!(
        client
            .cancel_operation(uuid::Uuid::nil())
            .await
            .unwrap_err()
            .to_string()
            .contains("no operation has id")
    );
    assert!(
        client
            .operations(&OperationFilter {
                cursor: Some("not a cursor".into()),
                ..OperationFilter::default()
            })
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_without_a_store_lists_what_runs_here() {
    let dispatcher = dispatcher(None);
    let client = Client::builder()
        .endpoint("waits", InProcessTransport::new(dispatcher))
        .build();
    let waits = WaitsClient::new(client.clone(), "waits");
    check_listing(client, waits, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_durable_client_lists_its_store_and_the_handler_its_operations() {
    let handler_store = Arc::new(MemoryStore::new());
    let dispatcher = dispatcher(Some(handler_store.clone()));
    let client = Client::builder()
        .endpoint("waits", InProcessTransport::new(dispatcher.clone()))
        .store(Arc::new(MemoryStore::new()))
        .caller_link_base("https://payments.example/api/operations")
        .build();
    let waits = WaitsClient::new(client.clone(), "waits");
    check_listing(client, waits, true).await;

    // The handler lists its running operations, with the links their starts carried.
    let running = dispatcher
        .async_operations(&AsyncQuery {
            states: vec![AsyncState::Running],
            ..AsyncQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 4);
    assert_eq!(running[0].service, "waits.v1");
    assert!(
        running[0].links[0]
            .url
            .starts_with("https://payments.example/api/operations/"),
        "{:?}",
        running[0].links
    );
    // A dispatcher without a store has nothing to list.
    assert!(
        self::dispatcher(None)
            .async_operations(&AsyncQuery::default())
            .await
            .is_err()
    );
}
