//! Replicas of a caller sharing one store: each drives the operations it holds a lease on and
//! renews its leases; when one dies, another claims its unfinished operations once their leases
//! expire and finishes them. Completions reach the survivor because replicas share one callback
//! address (`SO_REUSEPORT`): any replica's receiver records any completion in the shared store,
//! and the one driving the operation picks it up.
//!
//! Each replica runs on its own Tokio runtime with its own store handle (connection pool) and its
//! own callback receiver, so they share only the database and the network; a replica dies by
//! having its runtime shut down, as a crashed process would (nothing released, nothing flushed).
//! On PostgreSQL when `NEXUS_TEST_POSTGRES_URL` is set (see `scripts/ensure-postgres.sh`; each
//! test gets its own schema), and on an SQLite file.
#![cfg(all(unix, feature = "http", any(feature = "sqlite", feature = "postgres")))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use nexus_runtime::client::{EndpointConfig, OperationState, ReplicaConfig};
use nexus_runtime::machinery::{BreakerConfig, RetryPolicy};
use nexus_runtime::server::{CallbackListener, ServerHandle};
use nexus_runtime::store::{self, OperationId};
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{Client, OperationHandle};
use support::backend::{Backend, Opener};
use support::free_addr;
use support::ledger::{Desk, LedgerClient, Settle, serve};
use tokio::runtime::Runtime;

/// Opens a new handle on the shared store.
type Open = Opener;

const LEASE: Duration = Duration::from_millis(800);

fn replica_config() -> ReplicaConfig {
    ReplicaConfig::default()
        .lease(LEASE)
        .renew_interval(Duration::from_millis(150))
        .claim_interval(Duration::from_millis(150))
        .poll_interval(Duration::from_millis(100))
}

/// One replica: its runtime, its client, its receiver.
struct Replica {
    runtime: Runtime,
    client: Client,
    _receiver: ServerHandle,
}

impl Replica {
    async fn start(
        owner: &str,
        open: &Open,
        handler: &str,
        callback: SocketAddr,
        replicas: ReplicaConfig,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (open, handler, owner) = (open.clone(), handler.to_owned(), owner.to_owned());
        let (client, receiver) = runtime
            .spawn(async move {
                let store = open().await;
                let listener = CallbackListener::bind_shared(callback).await.unwrap();
                let client = Client::builder()
                    .endpoint(
                        "ledger",
                        // No circuit breaker: with the handler down, operations must back off
                        // (not wait, blocked, for a breaker probe another operation gets), or a
                        // slow machine turns the test's waits into a race with the breaker.
                        EndpointConfig::new(HttpTransport::new(handler).unwrap())
                            .retry(
                                RetryPolicy::default()
                                    .initial_interval(Duration::from_millis(100))
                                    .maximum_interval(Duration::from_millis(300)),
                            )
                            .breaker(BreakerConfig::disabled()),
                    )
                    .callback_url(listener.callback_url())
                    .store(store)
                    .owner_id(owner)
                    .replicas(replicas)
                    .build();
                let receiver = listener.serve(client.clone()).unwrap();
                client.recover().await.unwrap();
                (client, receiver)
            })
            .await
            .unwrap();
        Self {
            runtime,
            client,
            _receiver: receiver,
        }
    }

    /// Runs `work` with this replica's client, on its runtime.
    async fn run<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
        &self,
        work: impl FnOnce(Client) -> F,
    ) -> T {
        self.runtime.spawn(work(self.client.clone())).await.unwrap()
    }

    /// Dies: every task stops at once, nothing is released.
    fn kill(self) {
        let Self {
            runtime,
            client,
            _receiver,
        } = self;
        drop((client, _receiver));
        runtime.shutdown_background();
    }
}

async fn takeover(backend: &Backend) {
    let open = backend.opener();
    let desk = Desk::new(false);
    let handler = serve(&desk, "127.0.0.1:0").await;
    let callback = free_addr();
    let store = open().await;
    let a = Replica::start(
        "replica-a",
        &open,
        &handler.url(),
        callback,
        replica_config(),
    )
    .await;

    // A starts six operations (their completions wait for the gate), then, with the handler down,
    // schedules four more, which back off.
    let started: Vec<OperationId> = a
        .run(async |client| {
            let ledger = LedgerClient::new(client, "ledger");
            let mut started = Vec::new();
            for i in 0..6 {
                let handle = ledger
                    .settle(format!("s-{i}"))
                    .request_id(format!("run-s-{i}"))
                    .start()
                    .await
                    .unwrap();
                started.push(handle.operation_id());
            }
            started
        })
        .await;
    desk.set_down(true);
    let waiting: Vec<OperationId> = a
        .run(async |client| {
            let ledger = LedgerClient::new(client, "ledger");
            let mut handles = Vec::new();
            for i in 0..4 {
                handles.push(
                    ledger
                        .settle(format!("w-{i}"))
                        .request_id(format!("run-w-{i}"))
                        .schedule()
                        .unwrap(),
                );
            }
            for handle in &handles {
                handle
                    .wait_for(|i| i.state == OperationState::BackingOff)
                    .await;
            }
            handles.iter().map(OperationHandle::operation_id).collect()
        })
        .await;
    let all: Vec<OperationId> = started.iter().chain(&waiting).copied().collect();

    // B runs beside A for longer than a lease: A's renewals keep every operation A's.
    let b = Replica::start(
        "replica-b",
        &open,
        &handler.url(),
        callback,
        replica_config(),
    )
    .await;
    tokio::time::sleep(LEASE + LEASE / 2).await;
    assert_eq!(
        b.client.pending_operations(),
        0,
        "B took nothing from a live A"
    );
    for id in &all {
        let record = store.get(*id).await.unwrap().unwrap();
        assert_eq!(record.lease.map(|l| l.owner).as_deref(), Some("replica-a"));
    }

    // A dies. The handler comes back and completes what it started: the completions reach B's
    // receiver on the shared address. B claims A's operations once their leases expire, starts
    // the waiting ones with their request ids, and waits for the started ones.
    a.kill();
    desk.set_down(false);
    desk.open();
    let finish = b.run(async move |client| {
        let mut results = Vec::new();
        for id in all {
            let handle = client.attach::<Settle>(id).await.unwrap();
            results.push(handle.result().await.unwrap());
        }
        results
    });
    let Ok(results) = tokio::time::timeout(Duration::from_secs(30), finish).await else {
        let mut states = Vec::new();
        for id in started.iter().chain(&waiting) {
            let r = store.get(*id).await.unwrap().unwrap();
            states.push((r.request_id, r.state, r.lease.map(|l| l.owner)));
        }
        panic!("B did not finish every operation: {states:?}");
    };
    let expected: Vec<String> = (0..6)
        .map(|i| format!("settled s-{i}"))
        .chain((0..4).map(|i| format!("settled w-{i}")))
        .collect();
    assert_eq!(results, expected);
    for id in started.iter().chain(&waiting) {
        let record = store.get(*id).await.unwrap().unwrap();
        assert_eq!(record.state, store::OperationState::Succeeded);
        assert!(record.lease.is_none());
    }
    // The waiting operations were started by B with the request ids A recorded; no request id
    // other than A's reached the handler.
    let seen = desk.seen();
    for i in 0..4 {
        assert!(seen.contains(&format!("run-w-{i}")));
    }
    assert!(
        seen.iter().all(|id| id.starts_with("run-")),
        "unexpected request ids: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|id| id.starts_with("run-s-")).count(),
        6,
        "started operations were not started again"
    );
    b.kill();
}

/// A replica restarted with the same owner id resumes its own operations at once, without
/// waiting for their leases to expire.
async fn same_owner_resumes_at_once(backend: &Backend) {
    let open = backend.opener();
    let desk = Desk::new(false);
    let handler = serve(&desk, "127.0.0.1:0").await;
    let callback = free_addr();
    let long_lease = ReplicaConfig::default().lease(Duration::from_secs(3600));
    let a = Replica::start("pod-0", &open, &handler.url(), callback, long_lease.clone()).await;
    let id = a
        .run(async |client| {
            let handle = LedgerClient::new(client, "ledger")
                .settle("x".into())
                .start()
                .await
                .unwrap();
            handle.operation_id()
        })
        .await;
    a.kill();
    let again = Replica::start("pod-0", &open, &handler.url(), callback, long_lease).await;
    assert_eq!(again.client.pending_operations(), 1, "resumed at start-up");
    desk.open();
    let result = again
        .run(async move |client| {
            let handle = client.attach::<Settle>(id).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), handle.result()).await
        })
        .await
        .expect("completes");
    assert_eq!(result.unwrap(), "settled x");
    again.kill();
}

/// A cancel requested through a handle of one replica is carried out by the replica driving the
/// operation; the handle follows the other replica's operation through the store.
async fn cancel_from_another_replica(backend: &Backend) {
    let open = backend.opener();
    let desk = Desk::new(false);
    let handler = serve(&desk, "127.0.0.1:0").await;
    let callback = free_addr();
    let a = Replica::start("a", &open, &handler.url(), callback, replica_config()).await;
    let b = Replica::start("b", &open, &handler.url(), callback, replica_config()).await;
    let id = a
        .run(async |client| {
            let handle = LedgerClient::new(client, "ledger")
                .settle("x".into())
                .cancellation_type(nexus_runtime::CancellationType::TryCancel)
                .start()
                .await
                .unwrap();
            handle.operation_id()
        })
        .await;
    let error = b
        .run(async move |client| {
            let handle = client.attach::<Settle>(id).await.unwrap();
            assert_eq!(handle.state(), OperationState::Started);
            handle.cancel().await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), handle.result()).await
        })
        .await
        .expect("the cancellation ends the wait");
    assert_eq!(error.unwrap_err(), nexus_runtime::CallError::Canceled);
    let store = open().await;
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.state, store::OperationState::Canceled);
    assert!(record.cancel_requested_at.is_some());
    a.kill();
    b.kill();
}

support::backend::backend_matrix! {
    backends: sqlite, postgres;
    cases: [takeover, same_owner_resumes_at_once, cancel_from_another_replica];
}
