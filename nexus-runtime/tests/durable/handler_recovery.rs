//! Resume-or-fail: async operations left unfinished by a dispatcher that stopped (or crashed) are
//! resumed by the next one when declared resumable, and otherwise completed as failed with a
//! message that says so; either completion reaches a real callback receiver over loopback HTTP
//! through the outbox. On the memory store, SQLite and PostgreSQL (`NEXUS_TEST_POSTGRES_URL`).
//! Real time with short intervals: the SQL stores answer from other threads.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::{Duration, Instant};

use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::{Dispatcher, DurabilityOptions};
use nexus_runtime::store::AsyncState;
use nexus_runtime::transport::{CancelRequest, StartResponse};
use support::backend::Backend;
use support::jobs::{Job, JobsImpl, dispatcher, quick_options, result_of, start, url_callback};
use support::receiver::Receiver;

const WITHIN: Duration = Duration::from_secs(20);

fn token_of(response: StartResponse) -> String {
    match response {
        StartResponse::Async { token, .. } => token,
        other => panic!("expected an async answer, got {other:?}"),
    }
}

/// A dispatcher on `backend` as a handler process has it: with the HTTP server's completion
/// sender installed (the server need not listen for these tests).
async fn handler_process(
    backend: &Backend,
    jobs: &JobsImpl,
    options: DurabilityOptions,
) -> Dispatcher {
    let d = dispatcher(jobs, backend.open().await, options);
    let _wiring = HandlerServer::new(d.clone());
    d
}

/// Starts a long `process` (resumable) and a long `transfer` (not resumable) with callbacks to
/// `url`; returns their tokens.
async fn start_both(d: &Dispatcher, url: &str, suffix: &str) -> (String, String) {
    let long = |id: &str| Job {
        id: id.to_owned(),
        millis: 3_600_000,
    };
    let mut p = start(
        "process",
        &format!("p-{suffix}"),
        &long(&format!("p-{suffix}")),
    );
    p.callback = Some(url_callback(url));
    let mut t = start(
        "transfer",
        &format!("t-{suffix}"),
        &long(&format!("t-{suffix}")),
    );
    t.callback = Some(url_callback(url));
    (
        token_of(d.start(p).await.unwrap()),
        token_of(d.start(t).await.unwrap()),
    )
}

/// What the restarted handler must have sent, and must not have run.
async fn check_resumed_and_failed(
    receiver: &Receiver,
    restarted: &JobsImpl,
    (process, transfer): (&str, &str),
    suffix: &str,
) {
    let done = receiver.completion(process, WITHIN).await;
    assert_eq!(result_of(&done), format!("p-{suffix} done (resumed)"));
    assert!(done.start_time.is_some() && done.close_time.is_some());
    assert_eq!(
        receiver.headers_of(process)["x-caller-operation"],
        "op-1",
        "the callback headers of the start request are sent with the completion"
    );
    let failed = receiver.completion(transfer, WITHIN).await;
    let error = failed.outcome.unwrap_err();
    assert!(!error.is_canceled());
    for part in ["handler restarted", "`jobs.v1/transfer`", "not resumable"] {
        assert!(error.message.contains(part), "{part}: {}", error.message);
    }
    let p = format!("p-{suffix}");
    assert_eq!(restarted.resumptions("process", &p), 1);
    assert_eq!(restarted.starts("process", &p), 0);
    let t = format!("t-{suffix}");
    assert_eq!(
        restarted.resumptions("transfer", &t) + restarted.starts("transfer", &t),
        0,
        "work that is not resumable is not run again"
    );
}

/// A dispatcher stops (leases released); the next one on the store resumes or fails what it left.
async fn restart_resumes_or_fails(backend: &Backend) {
    let receiver = Receiver::bind("127.0.0.1:0").await;
    let before = JobsImpl::new();
    let first = handler_process(backend, &before, quick_options("handler-1")).await;
    let tokens = start_both(&first, &receiver.url(), "r").await;
    first.shutdown().await;

    let after = JobsImpl::new();
    let second = handler_process(backend, &after, quick_options("handler-1")).await;
    check_resumed_and_failed(&receiver, &after, (&tokens.0, &tokens.1), "r").await;
    // A retry of the original start still gets the token, and runs nothing.
    let mut retry = start(
        "process",
        "p-r",
        &Job {
            id: "p-r".into(),
            millis: 1,
        },
    );
    retry.callback = Some(url_callback(&receiver.url()));
    assert_eq!(token_of(second.start(retry).await.unwrap()), tokens.0);
    assert_eq!(after.starts("process", "p-r"), 0);
    let store = backend.open().await;
    for (token, state) in [
        (&tokens.0, AsyncState::Succeeded),
        (&tokens.1, AsyncState::Failed),
    ] {
        assert_eq!(store.get_async(token).await.unwrap().unwrap().state, state);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.accepted().len(),
        2,
        "each completion is delivered once"
    );
    second.shutdown().await;
}

/// Runs `f` in a runtime of its own, then drops the runtime: every task of it (dispatcher, work,
/// store connections) vanishes without a word, as in a crash.
fn in_process<T>(f: impl AsyncFnOnce() -> T) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = runtime.block_on(f());
    runtime.shutdown_timeout(Duration::from_secs(1));
    out
}

/// A crash (no shutdown, leases left as they were), then a restart with the same owner id: what
/// the crashed process held is recovered at once, long before its leases (60 s) expire.
fn crash_and_restart(backend: &Backend) {
    let options = || quick_options("handler-1").lease(Duration::from_secs(60));
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/callback", socket.local_addr().unwrap());
    let tokens = in_process(async || {
        let d = handler_process(backend, &JobsImpl::new(), options()).await;
        start_both(&d, &url, "c").await
    });
    in_process(async move || {
        let receiver = Receiver::from_std(socket);
        let after = JobsImpl::new();
        let d = handler_process(backend, &after, options()).await;
        check_resumed_and_failed(&receiver, &after, (&tokens.0, &tokens.1), "c").await;
        d.shutdown().await;
    });
}

/// A replica crashes; another (its own owner id) does not touch its operations while their leases
/// run, records a cancel request for one meanwhile, then takes them over: the resumable ones are
/// resumed (the canceled one with cancellation signalled), the others completed as failed or,
/// when a cancel request was recorded, as canceled.
fn another_replica_takes_over(backend: &Backend) {
    let lease = Duration::from_secs(3);
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/callback", socket.local_addr().unwrap());
    let (tokens, (canceled, failed), first_start) = in_process(async || {
        // Before the first lease is written: no lease can expire earlier than a lease after this.
        let first_start = Instant::now();
        let jobs = JobsImpl::new();
        let d = dispatcher(
            &jobs,
            backend.open().await,
            quick_options("replica-a").lease(lease),
        );
        let _wiring = HandlerServer::new(d.clone());
        let tokens = start_both(&d, &url, "x").await;
        let canceled_and_failed = start_both(&d, &url, "y").await;
        (tokens, canceled_and_failed, first_start)
    });
    in_process(async move || {
        let receiver = Receiver::from_std(socket);
        let after = JobsImpl::new();
        let d = dispatcher(
            &after,
            backend.open().await,
            quick_options("replica-b").lease(lease),
        );
        let _wiring = HandlerServer::new(d.clone());
        // Not running here, but recorded: accepted.
        for (token, operation) in [(&canceled, "process"), (&tokens.1, "transfer")] {
            let request = CancelRequest {
                service: "jobs.v1".into(),
                operation: operation.into(),
                token: token.clone(),
                headers: Default::default(),
                request_deadline: None,
            };
            d.cancel(request).await.unwrap();
        }
        assert_eq!(after.resumptions("process", "p-x"), 0);

        let done = receiver.completion(&tokens.0, WITHIN).await;
        // Leases are stored in microseconds: a millisecond of slack for the rounding.
        assert!(
            first_start.elapsed() + Duration::from_millis(1) >= lease,
            "taken over only once the lease expired"
        );
        assert_eq!(result_of(&done), "p-x done (resumed)");
        let transfer = receiver.completion(&tokens.1, WITHIN).await;
        let error = transfer.outcome.unwrap_err();
        assert!(error.is_canceled(), "{error:?}");
        assert!(
            error.message.contains("cancel request"),
            "{}",
            error.message
        );
        let resumed_canceled = receiver.completion(&canceled, WITHIN).await;
        let error = resumed_canceled.outcome.unwrap_err();
        assert!(error.is_canceled(), "{error:?}");
        assert_eq!(error.message, "p-y canceled");
        assert_eq!(after.resumptions("process", "p-y"), 1);
        // The fourth operation (`t-y`, not resumable, not canceled) failed.
        let failed = receiver.completion(&failed, WITHIN).await;
        let error = failed.outcome.unwrap_err();
        assert!(!error.is_canceled(), "{error:?}");
        assert_eq!(receiver.accepted().len(), 4);
        d.shutdown().await;
    });
}

/// What the runtime logs at `WARN` and above, kept for a test to read.
#[derive(Clone, Default)]
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Warnings {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Warnings {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A lease renewal counts the leases it renewed; more than the operations running here sends
/// it looking for the ones that are not. A process alone with its owner id is not warned; two
/// processes given one owner id are: the one that does not run the other's operations names
/// them.
fn one_owner_id_in_two_processes(backend: &Backend) {
    const WARNING: &str = "not running here";
    let warnings = Warnings::default();
    let writer = warnings.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Current-thread runtime: every task (the keepers' renewals) logs to this subscriber.
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/callback", socket.local_addr().unwrap());
    runtime.block_on(async {
        let renewals = |n: u64| tokio::time::sleep(Duration::from_millis(200 * n + 100));
        let solo = handler_process(backend, &JobsImpl::new(), quick_options("solo")).await;
        start_both(&solo, &url, "solo").await;
        renewals(3).await;
        assert!(!warnings.text().contains(WARNING), "{}", warnings.text());
        solo.shutdown().await;

        // The first twin's start-up is over before the second records anything: it has
        // nothing to resume, and finds the second's operations at a later renewal.
        let idle = handler_process(backend, &JobsImpl::new(), quick_options("twin")).await;
        renewals(1).await;
        let busy = handler_process(backend, &JobsImpl::new(), quick_options("twin")).await;
        let (p, t) = start_both(&busy, &url, "twin").await;
        let deadline = Instant::now() + WITHIN;
        while !(warnings.text().contains(&p) && warnings.text().contains(&t)) {
            assert!(Instant::now() < deadline, "{}", warnings.text());
            renewals(1).await;
        }
        let text = warnings.text();
        assert!(text.contains("owner=twin"), "{text}");
        assert!(!text.contains("owner=solo"), "{text}");
        busy.shutdown().await;
        idle.shutdown().await;
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

support::backend::backend_matrix! {
    backends: memory, sqlite, postgres;
    cases: [restart_resumes_or_fails];
    blocking cases: [crash_and_restart, another_replica_takes_over, one_owner_id_in_two_processes];
}
