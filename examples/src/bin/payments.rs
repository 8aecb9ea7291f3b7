//! The payments team's process: calls `fraud.v1` over Nexus RPC over HTTP, recording every
//! operation in a durable store (SQLite by default, or PostgreSQL).
//!
//! - Demo mode (default): prints the four outcomes: a sync score, an async check completed by
//!   callback, a canceled check, and a failed check with typed details. Exits non-zero on any
//!   unexpected outcome.
//! - Load mode (`--count N --run-id ID`): schedules N async `checkTransaction` operations with the
//!   request ids `{run_id}-{i}`, waits for all and prints a JSON summary. Killed and restarted with
//!   the same arguments, it resumes the same run (operations already recorded are found by their
//!   request id, not started again) and prints the same summary.
//!
//! TLS: an `https://` endpoint is verified against Mozilla's roots and `--ca FILE`; `--cert FILE
//! --key FILE` present a client certificate (mTLS). Completions arrive over plain HTTP unless
//! `--callback-tls-cert FILE --callback-tls-key FILE` are given (then the handler needs
//! `--callback-ca`).
//!
//! A store that fails: a check the store cannot record is never started, and counted in the
//! summary as `not_started` (with the first cause), not as failed; a load run with such checks
//! exits non-zero, naming the cause, once every check it did start has ended (run it again to
//! start them). `--disk-full-file FILE` makes the SQLite store full while FILE exists, and gives
//! it room again, without a restart, once FILE is removed (see `nexus_examples::disk_full`).
//!
//! Operators: `--admin-listen 127.0.0.1:9100 --admin-token TOKEN` serves Prometheus metrics at
//! `/metrics`, the page of pending operations at `/ops` (open `/ops#token=TOKEN`; cancel
//! buttons), and the JSON API under `/api`, while the process runs (a load run, or `--linger-secs`
//! after the demo). Each start then links back to `http://ADDR/api/operations/{id}`.
//!
//! Run (with `fraud-handler` listening): `cargo run -p nexus-examples --bin payments -- --endpoint
//! http://127.0.0.1:7243 [--count 1000 --run-id run-1]`

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fraud_contract::{
    CheckTransactionInput, CheckTransactionOutput, FraudClient, GetQuickScoreInput,
};
use nexus_examples::admin_flags::AdminArgs;
use nexus_examples::disk_full::DiskFullArgs;
use nexus_examples::fraud_desk::{CheckRejected, quick_score};
use nexus_examples::load::{check_input, request_id};
use nexus_examples::store_flag::open_store;
use nexus_examples::tls_flags::CallerTlsArgs;
use nexus_runtime::client::{EndpointConfig, ReplicaConfig};
use nexus_runtime::error::OperationErrorState;
use nexus_runtime::http::CallbackListener;
use nexus_runtime::http::HttpTransport;
use nexus_runtime::machinery::{BreakerConfig, RetryPolicy};
use nexus_runtime::{CallError, Client};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The store used when `--store` is not given: a file in a data directory under the current one.
const DEFAULT_STORE: &str = "./.nexus-data/payments.sqlite3";

/// Where load mode receives completions by default: a fixed address, so a restarted run receives
/// the completions of the operations its previous run started.
const DEFAULT_LOAD_CALLBACK: &str = "127.0.0.1:7244";

/// Calls the fraud team's `fraud.v1` over HTTP: the four outcomes, or a resumable load run.
#[derive(Debug, Parser)]
#[command(name = "payments", version)]
struct Args {
    /// Base URL of the fraud handler, such as http://127.0.0.1:7243.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Where this process receives completions [default: 127.0.0.1:0 (any free port) in demo
    /// mode, 127.0.0.1:7244 in load mode, which must keep it across restarts].
    #[arg(long, value_name = "ADDR")]
    callback_listen: Option<String>,
    /// Bound on each call (its schedule-to-close timeout), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout_secs: u64,
    /// Where operations are recorded: an SQLite file (created with its directory; not a
    /// directory), a `postgres://` URL (shared by replicas of this process), or `none` (nothing
    /// survives a restart).
    #[arg(long, value_name = "PATH_OR_URL", default_value = DEFAULT_STORE)]
    store: String,
    /// Load mode: how many `checkTransaction` operations the run has.
    #[arg(long, value_name = "N", requires = "run_id")]
    count: Option<u64>,
    /// Load mode: the run's id; request ids are `{run_id}-{i}`.
    #[arg(long, value_name = "ID", requires = "count")]
    run_id: Option<String>,
    /// Load mode: how many operations are in flight at most.
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// With PostgreSQL: this process's owner id for leases (default: a new one per run). Keeping
    /// it across restarts resumes the run at once instead of after the previous leases expire.
    #[arg(long, value_name = "ID")]
    owner_id: Option<String>,
    /// The longest wait between two start attempts of a check, in milliseconds [default: one
    /// hour, Temporal's].
    #[arg(long, value_name = "MS")]
    max_retry_interval_ms: Option<u64>,
    /// How long the circuit breaker stays open after consecutive failures, in milliseconds
    /// [default: 60 s, Temporal's].
    #[arg(long, value_name = "MS")]
    breaker_open_ms: Option<u64>,
    /// Send `Authorization: Bearer TOKEN` to the fraud handler.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    tls: CallerTlsArgs,
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    disk_full: DiskFullArgs,
    /// Keep serving (the admin page, completions) this long after the demo or the load run.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    linger_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    nexus_examples::logging::init("warn");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payments: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bind(addr: &str, shared: bool) -> Result<CallbackListener, String> {
    let cannot = |e: std::io::Error| format!("cannot listen on {addr}: {e}");
    #[cfg(unix)]
    if shared {
        // Replicas on one host share the callback address.
        let addr = addr
            .parse()
            .map_err(|e| format!("--callback-listen {addr}: {e}"))?;
        return CallbackListener::bind_shared(addr).await.map_err(cannot);
    }
    let _ = shared;
    CallbackListener::bind(addr).await.map_err(cannot)
}

async fn run(args: Args) -> Result<(), String> {
    let mut transport = HttpTransport::builder(&args.endpoint).tls(args.tls.client()?);
    if let Some(token) = &args.token {
        transport = transport.bearer_token(token);
    }
    let mut endpoint = EndpointConfig::new(transport.build().map_err(|e| e.to_string())?);
    if let Some(ms) = args.max_retry_interval_ms {
        endpoint =
            endpoint.retry(RetryPolicy::default().maximum_interval(Duration::from_millis(ms)));
    }
    if let Some(ms) = args.breaker_open_ms {
        endpoint =
            endpoint.breaker(BreakerConfig::default().open_duration(Duration::from_millis(ms)));
    }
    let opened = open_store(&args.store).await?;
    // Kept until the run ends: the store is full while the file exists.
    let _disk_full = args.disk_full.watch(opened.sqlite.as_ref()).await?;
    let shared = opened.shared;
    let load = args.count.zip(args.run_id.clone());
    let callback = args.callback_listen.clone().unwrap_or_else(|| {
        if load.is_some() {
            DEFAULT_LOAD_CALLBACK.to_owned()
        } else {
            "127.0.0.1:0".to_owned()
        }
    });
    let mut listener = bind(&callback, shared).await?;
    if let Some(tls) = args.tls.callback()? {
        listener = listener.tls(tls);
    }
    let callback_url = listener.callback_url();
    let mut builder = Client::builder()
        .endpoint("fraud-detection", endpoint)
        .callback_url(&callback_url);
    if let Some(store) = opened.store {
        builder = builder.store(store);
    }
    if shared {
        builder = builder.replicas(ReplicaConfig::default().lease(Duration::from_secs(10)));
    }
    if let Some(owner) = &args.owner_id {
        builder = builder.owner_id(owner);
    }
    if let Some(base) = args.admin.operations_url() {
        builder = builder.caller_link_base(base);
    }
    let client = builder.build();
    let admin = args.admin.serve(Some(client.clone()), None).await?;
    let receiver = listener
        .serve(client.clone())
        .map_err(|e| format!("callback receiver: {e}"))?;
    let resumed = client
        .recover()
        .await
        .map_err(|e| format!("cannot resume the recorded operations: {e}"))?;
    let fraud = FraudClient::new(client.clone(), "fraud-detection");
    let timeout = Duration::from_secs(args.timeout_secs);
    let outcome = match load {
        Some((count, run_id)) => {
            eprintln!(
                "run {run_id}: {count} checks, store {}, completions to {callback_url}, \
                 {resumed} resumed",
                args.store
            );
            let summary = load_run(&fraud, &run_id, count, args.concurrency, timeout).await;
            serde_json::to_string(&summary)
                .map(|line| println!("{line}"))
                .map_err(|e| format!("cannot print the summary: {e}"))
                .and_then(|()| summary.verdict())
        }
        None => {
            println!("completions come back to {callback_url}");
            four_outcomes(&fraud, timeout).await
        }
    };
    if args.linger_secs > 0 {
        tokio::time::sleep(Duration::from_secs(args.linger_secs)).await;
    }
    if let Some(admin) = admin {
        let _ = admin.shutdown().await;
    }
    client.shutdown().await;
    let _ = receiver.shutdown().await;
    outcome
}

/// The outcomes of a load run, printed as one line of JSON.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    run_id: String,
    count: u64,
    succeeded: u64,
    failed: u64,
    canceled: u64,
    timed_out: u64,
    /// Checks never started: the store could not record them (run again once it works).
    not_started: u64,
    approved: u64,
    /// Why the first check that was not started was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_started_cause: Option<String>,
}

impl Summary {
    fn add(&mut self, outcome: Result<CheckTransactionOutput, CallError>) {
        match outcome {
            Ok(verdict) => {
                self.succeeded += 1;
                self.approved += u64::from(verdict.approved);
            }
            Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => {
                self.canceled += 1;
            }
            Err(CallError::Canceled) => self.canceled += 1,
            Err(CallError::Timeout { .. }) => self.timed_out += 1,
            Err(CallError::NotStarted(cause)) => {
                self.not_started += 1;
                self.not_started_cause.get_or_insert(cause);
            }
            Err(_) => self.failed += 1,
        }
    }

    /// A run some of whose checks were never started (the store failed) is an error, naming the
    /// cause: a run again starts them.
    fn verdict(&self) -> Result<(), String> {
        match &self.not_started_cause {
            Some(cause) => Err(format!(
                "{} of {} checks were not started, their store failed: {cause}",
                self.not_started, self.count
            )),
            None => Ok(()),
        }
    }
}

/// Schedules the run's checks (at most `concurrency` in flight), waits for all, and returns the
/// summary. A check already recorded under its request id (a resumed run) is not started again:
/// its call follows the recorded operation.
async fn load_run(
    fraud: &FraudClient,
    run_id: &str,
    count: u64,
    concurrency: u32,
    timeout: Duration,
) -> Summary {
    let permits = Arc::new(Semaphore::new(concurrency as usize));
    let mut calls = JoinSet::new();
    let mut summary = Summary {
        run_id: run_id.to_owned(),
        count,
        ..Summary::default()
    };
    for i in 0..count {
        while let Some(done) = calls.try_join_next() {
            summary.add(done.unwrap_or_else(|e| Err(CallError::Invalid(e.to_string()))));
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let call = fraud
            .check_transaction(check_input(run_id, i))
            .request_id(request_id(run_id, i))
            .schedule_to_close_timeout(timeout);
        calls.spawn(async move {
            let outcome = call.await;
            drop(permit);
            outcome
        });
    }
    while let Some(done) = calls.join_next().await {
        summary.add(done.unwrap_or_else(|e| Err(CallError::Invalid(e.to_string()))));
    }
    summary
}

async fn four_outcomes(fraud: &FraudClient, timeout: Duration) -> Result<(), String> {
    // 1. A sync operation.
    let score = fraud
        .get_quick_score(GetQuickScoreInput {
            user_id: "user-ada".into(),
        })
        .schedule_to_close_timeout(timeout)
        .await
        .map_err(|e| format!("quick score: {e}"))?;
    if score.score != quick_score("user-ada") {
        return Err(format!("unexpected score {}", score.score));
    }
    println!(
        "1. sync    getQuickScore(user-ada) -> score {}",
        score.score
    );

    // 2. An async operation, completed later through the callback receiver.
    let handle = fraud
        .check_transaction(tx("tx-1001", 250.0))
        .schedule_to_close_timeout(timeout)
        .start()
        .await
        .map_err(|e| format!("start check: {e}"))?;
    let token = handle
        .token()
        .unwrap_or("<none: answered synchronously>")
        .to_owned();
    let verdict = handle.result().await.map_err(|e| format!("check: {e}"))?;
    if !verdict.approved {
        return Err(format!("expected an approved check, got {verdict:?}"));
    }
    println!(
        "2. async   checkTransaction(tx-1001, 250) -> token {token}, later by callback approved={} riskScore={}",
        verdict.approved, verdict.risk_score
    );

    // 3. A canceled operation.
    let handle = fraud
        .check_transaction(tx("tx-1002", 99.0))
        .schedule_to_close_timeout(timeout)
        .start()
        .await
        .map_err(|e| format!("start check: {e}"))?;
    handle.cancel().await.map_err(|e| format!("cancel: {e}"))?;
    match handle.result().await {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => {
            println!(
                "3. cancel  checkTransaction(tx-1002) -> canceled: {}",
                e.message
            );
        }
        other => return Err(format!("expected a canceled check, got {other:?}")),
    }

    // 4. A failed operation, with typed details.
    match fraud
        .check_transaction(tx("tx-1003", -5.0))
        .schedule_to_close_timeout(timeout)
        .await
    {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Failed => {
            let details: Option<CheckRejected> = e.details().map_err(|e| e.to_string())?;
            if details.as_ref().map(|d| d.transaction_id.as_str()) != Some("tx-1003") {
                return Err(format!(
                    "expected typed details for tx-1003, got {details:?}"
                ));
            }
            println!(
                "4. failed  checkTransaction(tx-1003, -5) -> OperationError failed: {} (details: {details:?})",
                e.message
            );
        }
        other => return Err(format!("expected a failed check, got {other:?}")),
    }
    Ok(())
}

fn tx(id: &str, amount: f64) -> CheckTransactionInput {
    CheckTransactionInput {
        transaction_id: id.into(),
        amount,
        user_id: "user-ada".into(),
    }
}
