//! The payments team's process: calls `fraud.v1` over Nexus RPC over HTTP and prints the four
//! outcomes: a sync score, an async check completed by callback, a canceled check, and a failed
//! check with typed details. Exits non-zero on any unexpected outcome.
//!
//! Run (with `fraud-handler` listening): `cargo run -p nexus-examples --bin payments -- --endpoint
//! http://127.0.0.1:7243`

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fraud_contract::{CheckTransactionInput, FraudClient, GetQuickScoreInput};
use nexus_examples::fraud_desk::{CheckRejected, quick_score};
use nexus_runtime::error::OperationErrorState;
use nexus_runtime::server::CallbackListener;
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{CallError, Client};

/// Calls the fraud team's `fraud.v1` over HTTP and prints each outcome.
#[derive(Debug, Parser)]
#[command(name = "payments", version)]
struct Args {
    /// Base URL of the fraud handler, such as http://127.0.0.1:7243.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Where this process receives completions (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    callback_listen: String,
    /// Bound on each call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payments: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let transport = HttpTransport::new(&args.endpoint).map_err(|e| e.to_string())?;
    let listener = CallbackListener::bind(args.callback_listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.callback_listen))?;
    let client = Client::builder()
        .endpoint("fraud-detection", transport)
        .callback_url(listener.callback_url())
        .build();
    println!("completions come back to {}", listener.callback_url());
    let receiver = listener
        .serve(client.clone())
        .map_err(|e| format!("callback receiver: {e}"))?;
    let fraud = FraudClient::new(client, "fraud-detection");
    let timeout = Duration::from_secs(args.timeout_secs);
    let outcome = four_outcomes(&fraud, timeout).await;
    let _ = receiver.shutdown().await;
    outcome
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
