//! The payments team calls `fraud.v1` in one process, over the in-process transport:
//! a sync score, an async check completing later, a canceled check, and an OperationError
//! surfaced as a typed error.
//!
//! Both sides record their operations in the embedded default store, an SQLite file
//! (`--store PATH`; by default the path in `NEXUS_EXAMPLE_STORE`, or
//! `./.nexus-data/inprocess.sqlite3`): no server is needed.
//!
//! Run: `cargo run -p nexus-examples --bin inprocess` (`-- --help` for the options)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fraud_contract::{CheckTransactionInput, FraudClient, FraudService, GetQuickScoreInput};
use nexus_examples::fraud_desk::{CheckRejected, FraudDesk};
use nexus_runtime::error::OperationErrorState;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::SqliteStore;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{CallError, Client};

/// Calls the fraud team's `fraud.v1` service in one process, over the in-process transport: a
/// sync score, an async check completed later, a canceled check and a failed check with typed
/// details. Exits non-zero if any outcome differs from the expected one.
#[derive(Debug, Parser)]
#[command(name = "inprocess", version)]
struct Args {
    /// The SQLite file both teams record their operations in (default: `NEXUS_EXAMPLE_STORE`, or
    /// ./.nexus-data/inprocess.sqlite3).
    #[arg(long, value_name = "PATH")]
    store: Option<String>,
    /// How long an asynchronous `checkTransaction` takes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    check_delay_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // The embedded default store: one SQLite file holds both teams' records here.
    let path = args.store.unwrap_or_else(|| {
        std::env::var("NEXUS_EXAMPLE_STORE")
            .unwrap_or_else(|_| "./.nexus-data/inprocess.sqlite3".to_owned())
    });
    let store = Arc::new(
        SqliteStore::open(&path)
            .await
            .map_err(|e| format!("store {path}: {e}"))?,
    );
    println!("records in {path}");
    // The fraud team: its implementation behind a dispatcher, deduplicating starts by request id.
    let dispatcher = Dispatcher::builder()
        .service(FraudService::handler(FraudDesk::new(
            Duration::from_millis(args.check_delay_ms),
        )))
        .store(store.clone())
        .build();
    // The payments team: a client with an endpoint named "fraud-detection", recording every
    // operation before its first attempt.
    let client = Client::builder()
        .endpoint(
            "fraud-detection",
            InProcessTransport::new(dispatcher.clone()),
        )
        .store(store)
        .build();
    let fraud = FraudClient::new(client, "fraud-detection");

    // 1. A sync operation.
    let score = fraud
        .get_quick_score(GetQuickScoreInput {
            user_id: "user-ada".into(),
        })
        .await
        .map_err(|e| format!("quick score: {e}"))?;
    println!(
        "1. sync    getQuickScore(user-ada) -> score {}",
        score.score
    );

    // 2. An async operation: started, then completed later by the handler.
    let handle = fraud
        .check_transaction(tx("tx-1001", 250.0))
        .start()
        .await
        .map_err(|e| format!("start check: {e}"))?;
    let token = handle.token().unwrap_or("<none>").to_owned();
    let verdict = handle.result().await.map_err(|e| format!("check: {e}"))?;
    println!(
        "2. async   checkTransaction(tx-1001, 250) -> token {token}, later approved={} riskScore={}",
        verdict.approved, verdict.risk_score
    );

    // 3. A canceled operation.
    let handle = fraud
        .check_transaction(tx("tx-1002", 99.0))
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

    // 4. An OperationError, with typed details.
    match fraud.check_transaction(tx("tx-1003", -5.0)).await {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Failed => {
            let details: Option<CheckRejected> = e.details().map_err(|e| e.to_string())?;
            println!(
                "4. failed  checkTransaction(tx-1003, -5) -> OperationError failed: {} (details: {details:?})",
                e.message
            );
        }
        other => return Err(format!("expected a failed check, got {other:?}")),
    }
    // Stop both sides cleanly: nothing is left running, so nothing is resumed next time.
    fraud.service_client().client().shutdown().await;
    dispatcher.shutdown().await;
    Ok(())
}

fn tx(id: &str, amount: f64) -> CheckTransactionInput {
    CheckTransactionInput {
        transaction_id: id.into(),
        amount,
        user_id: "user-ada".into(),
    }
}
