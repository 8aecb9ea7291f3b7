//! The in-process call: a sync operation through the generated stub, the client, the in-process
//! transport, the dispatcher and the dispatch table, against a direct trait method call doing the
//! same JSON encode and decode ([`direct_quick_score`]).
//!
//! Measured in rounds: each round times a batch of baseline calls and a batch of Nexus calls
//! back to back (alternating which goes first), so both see the same machine load; the overhead
//! of a round is the difference of the two per-call times, and the result is the median over the
//! rounds. Everything runs on this thread (a current-thread runtime), so the time measured is the
//! thread's own CPU time where Linux reports it (`/proc/thread-self/schedstat`): time the thread
//! spends descheduled on a busy machine is not counted. Criterion's
//! `cargo bench -p nexus-benches --bench inprocess` measures the same calls in wall time.

use std::hint::black_box;
use std::time::Duration;

use fraud_contract::{FraudClient, FraudService};
use nexus_examples::fraud_desk::FraudDesk;
use nexus_runtime::Client;
use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;

use crate::stats::{Clock, median};
use crate::{DirectDesk, bench_input, direct_quick_score};

/// A `fraud.v1` stub calling a `FraudDesk` in the same process.
pub fn fraud_client() -> FraudClient {
    let dispatcher = Dispatcher::builder()
        .service(FraudService::handler(FraudDesk::new(
            Duration::from_millis(1),
        )))
        .build();
    let client = Client::builder()
        .endpoint("fraud", InProcessTransport::new(dispatcher))
        .build();
    FraudClient::new(client, "fraud")
}

/// What the rounds measured, per call.
#[derive(Clone, Debug)]
pub struct InProcessReport {
    /// Median time of a direct call, in ns.
    pub baseline_ns: f64,
    /// Median time of a Nexus call awaited (`stub.op(input).await`), in ns.
    pub nexus_ns: f64,
    /// Median over the rounds of (Nexus - direct), in ns.
    pub overhead_ns: f64,
    /// Median time of a Nexus call through a handle (`.start()` then `result()`), in ns.
    pub handle_ns: f64,
    /// Median over the rounds of (handle - direct), in ns.
    pub handle_overhead_ns: f64,
    /// Rounds measured.
    pub rounds: usize,
    /// Calls per variant per round.
    pub calls: usize,
    /// What was timed.
    pub clock: Clock,
}

/// Times `calls` calls of each variant in each of `rounds` rounds (after one warm-up round).
pub fn measure(rounds: usize, calls: usize) -> InProcessReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let fraud = fraud_client();
    let input = bench_input();
    let desk = DirectDesk;
    let clock = Clock::thread_cpu_or_wall();

    let direct = |n: usize| {
        let started = clock.now();
        for _ in 0..n {
            black_box(direct_quick_score(&desk, black_box(&input)));
        }
        per_call(clock.since(started), n)
    };
    let awaited = |n: usize| {
        runtime.block_on(async {
            let started = clock.now();
            for _ in 0..n {
                let out = fraud
                    .get_quick_score(black_box(input.clone()))
                    .await
                    .expect("the call succeeds");
                black_box(out);
            }
            per_call(clock.since(started), n)
        })
    };
    let handled = |n: usize| {
        runtime.block_on(async {
            let started = clock.now();
            for _ in 0..n {
                let handle = fraud
                    .get_quick_score(black_box(input.clone()))
                    .start()
                    .await
                    .expect("the call starts");
                black_box(handle.result().await.expect("the call succeeds"));
            }
            per_call(clock.since(started), n)
        })
    };

    // Warm up caches, allocator and branch predictors.
    direct(calls);
    awaited(calls);
    handled(calls);

    let (mut base, mut nexus, mut handle, mut over, mut handle_over) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let (b, n, h) = if round.is_multiple_of(2) {
            let b = direct(calls);
            (b, awaited(calls), handled(calls))
        } else {
            let h = handled(calls);
            let n = awaited(calls);
            (direct(calls), n, h)
        };
        base.push(b);
        nexus.push(n);
        handle.push(h);
        over.push(n - b);
        handle_over.push(h - b);
    }
    InProcessReport {
        baseline_ns: median(&base),
        nexus_ns: median(&nexus),
        overhead_ns: median(&over),
        handle_ns: median(&handle),
        handle_overhead_ns: median(&handle_over),
        rounds,
        calls,
        clock,
    }
}

/// Which call [`spin`] repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The direct trait call.
    Direct,
    /// `stub.op(input).await`.
    Awaited,
    /// `.start()` then `handle.result()`.
    Handle,
    /// An HTTP request through nexus-rs's `HandlerServer` router, without sockets.
    RouterNexus,
    /// The same request through the bare axum router, without sockets.
    RouterBare,
}

/// Repeats one variant for `seconds`, or exactly `calls` times (to run under a profiler or
/// count instructions); returns the calls made.
pub fn spin(variant: Variant, seconds: f64, calls: Option<u64>) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let fraud = fraud_client();
    let input = bench_input();
    let body = bytes::Bytes::from(serde_json::to_vec(&input).expect("encodes"));
    let nexus_router = runtime.block_on(async {
        HandlerServer::new(crate::servers::fraud_dispatcher(
            Duration::from_millis(1),
            None,
        ))
        .router()
    });
    let bare_router = crate::servers::bare_router();
    let until = std::time::Instant::now() + Duration::from_secs_f64(seconds);
    let (batch, limit) = match calls {
        Some(n) => (n, n),
        None => (1000, u64::MAX),
    };
    let mut calls = 0;
    runtime.block_on(async {
        while calls < limit && (limit != u64::MAX || std::time::Instant::now() < until) {
            for _ in 0..batch {
                match variant {
                    Variant::Direct => {
                        black_box(direct_quick_score(&DirectDesk, black_box(&input)));
                    }
                    Variant::Awaited => {
                        black_box(fraud.get_quick_score(input.clone()).await.expect("call"));
                    }
                    Variant::Handle => {
                        let handle = fraud
                            .get_quick_score(input.clone())
                            .start()
                            .await
                            .expect("start");
                        black_box(handle.result().await.expect("result"));
                    }
                    Variant::RouterNexus => {
                        black_box(route(&nexus_router, &body).await);
                    }
                    Variant::RouterBare => {
                        black_box(route(&bare_router, &body).await);
                    }
                }
            }
            calls += batch;
        }
    });
    calls
}

/// Sends the `getQuickScore` request a load generator sends through `router`, as hyper would
/// hand it over, and reads the whole answer.
async fn route(router: &axum::Router, body: &bytes::Bytes) -> bytes::Bytes {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let request = http::Request::post(crate::servers::QUICK_SCORE_PATH)
        .header(http::header::HOST, "127.0.0.1:7243")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .header("nexus-request-id", "bench-0-1")
        .body(axum::body::Body::from(body.clone()))
        .expect("a valid request");
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    assert_eq!(response.status(), http::StatusCode::OK);
    match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => panic!("the answer's body: {e}"),
    }
}

fn per_call(elapsed: Duration, calls: usize) -> f64 {
    elapsed.as_secs_f64() * 1e9 / calls as f64
}

impl InProcessReport {
    /// The report as a Markdown table.
    pub fn table(&self) -> String {
        format!(
            "| in-process sync call (median of {rounds} rounds x {calls} calls, {clock}) | ns/call | overhead vs direct |\n\
             |---|---:|---:|\n\
             | baseline: direct trait call + JSON encode/decode | {b:.0} | - |\n\
             | nexus: `stub.get_quick_score(input).await` | {n:.0} | {o:.0} ns ({nr:.1}x) |\n\
             | nexus: `.start()` + `handle.result()` (driver task) | {h:.0} | {ho:.0} ns ({hr:.1}x) |\n",
            rounds = self.rounds,
            calls = self.calls,
            clock = self.clock.name(),
            b = self.baseline_ns,
            n = self.nexus_ns,
            o = self.overhead_ns,
            nr = self.nexus_ns / self.baseline_ns,
            h = self.handle_ns,
            ho = self.handle_overhead_ns,
            hr = self.handle_ns / self.baseline_ns,
        )
    }
}
