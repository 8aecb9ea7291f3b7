//! Rust calling Temporal: calls a Temporal worker's Nexus service `EchoService` (the Python
//! worker `interop/echo_worker.py`) through a Temporal server's Nexus HTTP API, with the
//! `HttpTransport` and a typed contract, and checks each outcome.
//!
//! Prints one line per check, `PASS name` or `FAIL name: why`, and exits non-zero if any failed:
//! - `echo-sync`: a sync operation answered by the worker (input, request id and a caller header
//!   arrive intact);
//! - `echo_wf-async`: a workflow-run operation: a token and a link to the workflow at once, the
//!   result later through this process's callback receiver;
//! - `echo_wf-cancel`: a long workflow-run operation canceled; the canceled completion (which
//!   Temporal sends chunked) arrives at the receiver;
//! - `fail-sync`: a sync failure (424) surfaces as a typed failed `OperationError`;
//! - `fail_wf-async`: a workflow that fails completes the operation as failed, by callback.
//!
//! With `--fraud-endpoint URL` (an endpoint served by `fraud-worker --check-workflow ...`), also:
//! - `fraud-workflow-run`: `fraud.v1/checkTransaction` as a workflow-run operation of the Rust
//!   worker: a workflow-run token and a link to the workflow at once, the workflow's result later
//!   through this process's callback receiver.
//!
//! Run: `temporal-echo --endpoint http://127.0.0.1:7243/nexus/endpoints/{endpoint-id}/services`
//! (`interop/run.sh` starts the server and the worker and runs it).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fraud_contract::{CheckTransactionInput, FraudClient};
use nexus_runtime::error::OperationErrorState;
use nexus_runtime::http::CallbackListener;
use nexus_runtime::http::HttpTransport;
use nexus_runtime::{CallError, Client, OperationContext, OperationResult, nexus_service};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the echo operations take: anything; `sleep` is how long a workflow sleeps, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EchoInput {
    /// Who calls.
    pub from: String,
    /// For the workflow-run operations: how long the workflow sleeps, in seconds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<f64>,
}

/// The sync `echo` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EchoOutput {
    /// The input, as the worker received it.
    pub echo: Value,
    /// The request id the worker saw.
    pub request_id: String,
    /// The headers the worker saw (lower-case names).
    pub headers: BTreeMap<String, String>,
}

/// What the echo workflow returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowEcho {
    /// The input, as the workflow received it.
    pub echoed_by_workflow: Value,
}

/// The Temporal worker's service, as a Rust contract (wire names as the Python worker declares
/// them).
#[nexus_service(name = "EchoService")]
pub trait Echo {
    /// Answers synchronously with the input, the request id and the headers seen.
    #[operation(name = "echo")]
    async fn echo(&self, ctx: OperationContext, input: EchoInput) -> OperationResult<EchoOutput>;

    /// Runs a workflow that sleeps, then returns the input.
    #[operation(name = "echo_wf")]
    async fn echo_wf(
        &self,
        ctx: OperationContext,
        input: EchoInput,
    ) -> OperationResult<WorkflowEcho>;

    /// Runs a workflow that fails.
    #[operation(name = "fail_wf")]
    async fn fail_wf(
        &self,
        ctx: OperationContext,
        input: EchoInput,
    ) -> OperationResult<WorkflowEcho>;

    /// Fails synchronously with an OperationError.
    #[operation(name = "fail")]
    async fn fail(&self, ctx: OperationContext, input: EchoInput) -> OperationResult<EchoOutput>;
}

/// Calls a Temporal worker's `EchoService` through a Temporal endpoint and checks each outcome.
#[derive(Debug, Parser)]
#[command(name = "temporal-echo", version)]
struct Args {
    /// The endpoint's Nexus base URL:
    /// http://HOST:HTTP_PORT/nexus/endpoints/{endpoint-id}/services.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Where this process receives completions (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    callback_listen: String,
    /// A `fraud.v1` endpoint whose checks are workflow-run operations:
    /// http://HOST:HTTP_PORT/nexus/endpoints/{endpoint-id}/services.
    #[arg(long, value_name = "URL")]
    fraud_endpoint: Option<String>,
    /// Bound on each call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout_secs: u64,
}

/// The outcome of one check: `Ok(detail)` or `Err(why)`.
type Check = Result<String, String>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    nexus_examples::logging::init("warn");
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("temporal-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let transport = HttpTransport::new(&args.endpoint).map_err(|e| e.to_string())?;
    let listener = CallbackListener::bind(args.callback_listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.callback_listen))?;
    let mut builder = Client::builder()
        .endpoint("temporal", transport)
        .callback_url(listener.callback_url());
    if let Some(url) = &args.fraud_endpoint {
        builder = builder.endpoint("fraud", HttpTransport::new(url).map_err(|e| e.to_string())?);
    }
    let client = builder.build();
    eprintln!("completions come back to {}", listener.callback_url());
    let receiver = listener
        .serve(client.clone())
        .map_err(|e| format!("callback receiver: {e}"))?;
    let fraud = args
        .fraud_endpoint
        .is_some()
        .then(|| FraudClient::new(client.clone(), "fraud"));
    let echo = EchoClient::new(client, "temporal");
    let timeout = Duration::from_secs(args.timeout_secs);

    // Independent checks, run together to keep the test short.
    let (sync, async_, cancel, fail, fail_wf, fraud_wf) = tokio::join!(
        echo_sync(&echo, timeout),
        echo_wf_async(&echo, timeout),
        echo_wf_cancel(&echo, timeout),
        fail_sync(&echo, timeout),
        fail_wf_async(&echo, timeout),
        async {
            match &fraud {
                Some(fraud) => Some(fraud_workflow_run(fraud, timeout).await),
                None => None,
            }
        },
    );
    let mut all_passed = true;
    let checks = [
        ("echo-sync", Some(sync)),
        ("echo_wf-async", Some(async_)),
        ("echo_wf-cancel", Some(cancel)),
        ("fail-sync", Some(fail)),
        ("fail_wf-async", Some(fail_wf)),
        ("fraud-workflow-run", fraud_wf),
    ];
    for (name, check) in checks
        .into_iter()
        .filter_map(|(name, check)| Some((name, check?)))
    {
        match check {
            Ok(detail) => println!("PASS rust->temporal/{name} ({detail})"),
            Err(why) => {
                all_passed = false;
                println!("FAIL rust->temporal/{name}: {why}");
            }
        }
    }
    let _ = receiver.shutdown().await;
    Ok(all_passed)
}

fn input(from: &str, sleep: Option<f64>) -> EchoInput {
    EchoInput {
        from: from.into(),
        sleep,
    }
}

async fn echo_sync(echo: &EchoClient, timeout: Duration) -> Check {
    let request_id = format!("nexus-rs-echo-{}", std::process::id());
    let out = echo
        .echo(input("nexus-rs", None))
        .request_id(&request_id)
        .header("x-nexus-rs", "interop")
        .schedule_to_close_timeout(timeout)
        .await
        .map_err(|e| format!("call failed: {e}"))?;
    if out.echo != json!({"from": "nexus-rs"}) {
        return Err(format!("the worker echoed {}", out.echo));
    }
    if out.request_id != request_id {
        return Err(format!(
            "the worker saw request id {:?}, not {request_id:?}",
            out.request_id
        ));
    }
    if out.headers.get("x-nexus-rs").map(String::as_str) != Some("interop") {
        return Err(format!(
            "the worker did not see the caller's header: {:?}",
            out.headers
        ));
    }
    Ok(format!(
        "request id {request_id} and header seen by the worker"
    ))
}

async fn echo_wf_async(echo: &EchoClient, timeout: Duration) -> Check {
    let sent = input("nexus-rs-async", Some(0.5));
    let handle = echo
        .echo_wf(sent.clone())
        .schedule_to_close_timeout(timeout)
        .start()
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    let token = handle
        .token()
        .ok_or("the operation answered synchronously, not with a token")?
        .to_owned();
    // The start answer links to the workflow the worker started:
    // temporal:///namespaces/default/workflows/{workflow id}/{run id}/history?...
    let workflow = handle
        .start_links()
        .iter()
        .find_map(|l| {
            l.url
                .strip_prefix("temporal:///namespaces/default/workflows/")
                .and_then(|rest| rest.split('/').next())
                .filter(|id| id.starts_with("echo-wf-"))
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            format!(
                "no link to the worker's echo workflow in the start answer: {:?}",
                handle.start_links()
            )
        })?;
    let out = handle
        .result()
        .await
        .map_err(|e| format!("result failed: {e}"))?;
    let expected = serde_json::to_value(&sent).map_err(|e| e.to_string())?;
    if out.echoed_by_workflow != expected {
        return Err(format!("the workflow echoed {}", out.echoed_by_workflow));
    }
    Ok(format!(
        "token {}…, workflow {workflow}, result by callback",
        token.chars().take(12).collect::<String>()
    ))
}

async fn echo_wf_cancel(echo: &EchoClient, timeout: Duration) -> Check {
    let handle = echo
        .echo_wf(input("nexus-rs-cancel", Some(600.0)))
        .schedule_to_close_timeout(timeout)
        .start()
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    if handle.token().is_none() {
        return Err("the operation answered synchronously, not with a token".into());
    }
    let asked = Instant::now();
    handle
        .cancel()
        .await
        .map_err(|e| format!("cancel failed: {e}"))?;
    match handle.result().await {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Canceled => Ok(format!(
            "canceled completion by callback after {} ms: {}",
            asked.elapsed().as_millis(),
            e.message
        )),
        other => Err(format!("expected a canceled OperationError, got {other:?}")),
    }
}

async fn fail_sync(echo: &EchoClient, timeout: Duration) -> Check {
    match echo
        .fail(input("nexus-rs-fail", None))
        .schedule_to_close_timeout(timeout)
        .await
    {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Failed => {
            let chain = failure_chain(&e);
            if chain.contains("failed on purpose") {
                Ok(format!("OperationError failed: {chain}"))
            } else {
                Err(format!(
                    "the failure does not carry the worker's message: {chain}"
                ))
            }
        }
        other => Err(format!("expected a failed OperationError, got {other:?}")),
    }
}

async fn fail_wf_async(echo: &EchoClient, timeout: Duration) -> Check {
    let handle = echo
        .fail_wf(input("nexus-rs-fail-wf", None))
        .schedule_to_close_timeout(timeout)
        .start()
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    if handle.token().is_none() {
        return Err("the operation answered synchronously, not with a token".into());
    }
    match handle.result().await {
        Err(CallError::Operation(e)) if e.state == OperationErrorState::Failed => {
            let chain = failure_chain(&e);
            if chain.contains("workflow failed on purpose") {
                Ok(format!("OperationError failed by callback: {chain}"))
            } else {
                Err(format!(
                    "the failure does not carry the workflow's message: {chain}"
                ))
            }
        }
        other => Err(format!("expected a failed OperationError, got {other:?}")),
    }
}

async fn fraud_workflow_run(fraud: &FraudClient, timeout: Duration) -> Check {
    let input = CheckTransactionInput {
        transaction_id: format!("tx-http-{}", std::process::id()),
        amount: 250.0,
        user_id: "user-ada".into(),
    };
    let workflow_id = format!("check-{}", input.transaction_id);
    let handle = fraud
        .check_transaction(input.clone())
        .schedule_to_close_timeout(timeout)
        .start()
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    if handle.token().is_none() {
        return Err("the operation answered synchronously, not with a token".into());
    }
    // The worker started workflow `check-{transaction}`, and its answer links to it.
    let linked = handle.start_links().iter().any(|l| {
        l.url.starts_with(&format!(
            "temporal:///namespaces/default/workflows/{workflow_id}/"
        ))
    });
    if !linked {
        return Err(format!(
            "no link to workflow {workflow_id} in the start answer: {:?}",
            handle.start_links()
        ));
    }
    let verdict = handle
        .result()
        .await
        .map_err(|e| format!("result failed: {e}"))?;
    let expected = nexus_examples::fraud_desk::verdict(&input).map_err(|e| e.message)?;
    if verdict.approved != expected.approved || verdict.risk_score != expected.risk_score {
        return Err(format!("unexpected verdict {verdict:?}"));
    }
    Ok(format!(
        "workflow {workflow_id} answered by callback: approved, riskScore {}",
        verdict.risk_score
    ))
}

/// The messages of an OperationError and its causes, joined.
fn failure_chain(error: &nexus_runtime::OperationError) -> String {
    let mut messages = vec![error.message.clone()];
    let mut cause = error.cause.as_deref();
    while let Some(failure) = cause {
        messages.push(failure.message.clone());
        cause = failure.cause.as_deref();
    }
    messages.join(" <- ")
}
