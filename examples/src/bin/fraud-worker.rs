//! The fraud team's Temporal worker: serves `fraud.v1` (implemented by `FraudDesk`) from a
//! Temporal task queue, for endpoints created with `temporal operator nexus endpoint create
//! --target-namespace NS --target-task-queue Q`, until Ctrl-C or SIGTERM.
//!
//! Run: `fraud-worker --temporal 127.0.0.1:7233 --namespace default --task-queue fraud
//! --temporal-http 127.0.0.1:7243` (`RUST_LOG=debug` shows every task).
//!
//! `checkTransaction` is an async operation whose completion goes back through Temporal: to
//! Temporal's Nexus callback URL (`--temporal-http`, the frontend's HTTP address) for callers
//! that are workflows, to the caller's own callback URL for callers over HTTP. With
//! `--check-workflow TYPE` it is a workflow-run operation instead: each check starts a Temporal
//! workflow of that type (on `--workflow-task-queue`, run by a worker in any language) with the
//! check's input, and Temporal completes the operation with the workflow's result.
//!
//! Hosted Temporal: `--api-key KEY` (or `TEMPORAL_API_KEY`), `--tls-ca FILE`, `--tls-cert FILE
//! --tls-key FILE` (mTLS), `--tls-domain NAME`. For tests: `--event-log FILE` records every start
//! and completion as JSON lines (see `nexus_examples::observe`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fraud_contract::{
    CheckTransactionInput, CheckTransactionOutput, FlagUserInput, Fraud, FraudService,
    GetQuickScoreInput, GetQuickScoreOutput,
};
use nexus_examples::fraud_desk::FraudDesk;
use nexus_examples::observe::{EventLog, LoggedCompletions, Observed};
use nexus_runtime::http::HttpCompletionSender;
use nexus_runtime::security::{CallbackGuard, CallbackRule};
use nexus_runtime::service::{Dispatcher, ServiceHandler};
use nexus_runtime::temporal::{TemporalTls, TemporalWorker, WorkflowRunOperation};
use nexus_runtime::{OperationContext, OperationResult};

/// Serves `fraud.v1` from a Temporal task queue.
#[derive(Debug, Parser)]
#[command(name = "fraud-worker", version)]
struct Args {
    /// The Temporal frontend's gRPC address: HOST:PORT, or an http:// or https:// URL.
    #[arg(long, value_name = "ADDR")]
    temporal: String,
    /// The namespace of the task queue.
    #[arg(long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// The task queue the endpoint targets.
    #[arg(long, value_name = "Q")]
    task_queue: String,
    /// How long an asynchronous `checkTransaction` takes, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 300)]
    check_delay_ms: u64,
    /// The Temporal frontend's HTTP address (HOST:PORT or URL), where completions for workflow
    /// callers go (its Nexus callback URL, /namespaces/NS/nexus/callback).
    #[arg(long, value_name = "ADDR")]
    temporal_http: Option<String>,
    /// Implement `checkTransaction` by running a Temporal workflow of this type.
    #[arg(long, value_name = "TYPE")]
    check_workflow: Option<String>,
    /// The task queue of the check workflows (default: --task-queue).
    #[arg(long, value_name = "Q")]
    workflow_task_queue: Option<String>,
    /// Concurrent long polls.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pollers: usize,
    /// The identity reported to Temporal (default: PID@HOST).
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
    /// An API key for Temporal (turns TLS on); default: the TEMPORAL_API_KEY environment variable.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// The CA of the Temporal server's certificate (PEM); turns TLS on.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// A client certificate for mTLS (PEM), with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The name the server's certificate must have (default: the address's host); turns TLS on.
    #[arg(long, value_name = "NAME")]
    tls_domain: Option<String>,
    /// Allow completions to callback URLs matching RULE (repeatable); without it, loopback only.
    #[arg(long = "callback-allow", value_name = "RULE")]
    callback_allow: Vec<CallbackRule>,
    /// Record every start and every completion sent in FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
}

/// `fraud.v1` with `checkTransaction` run as a Temporal workflow, the rest by the desk.
struct WorkflowChecks {
    desk: FraudDesk,
    workflow_type: String,
    task_queue: Option<String>,
}

impl Fraud for WorkflowChecks {
    async fn check_transaction(
        &self,
        ctx: OperationContext,
        input: CheckTransactionInput,
    ) -> OperationResult<CheckTransactionOutput> {
        // One workflow per transaction: a retried start finds it again.
        let mut run = WorkflowRunOperation::<CheckTransactionInput, CheckTransactionOutput>::new(
            &self.workflow_type,
        )
        .workflow_id(format!("check-{}", input.transaction_id));
        if let Some(queue) = &self.task_queue {
            run = run.task_queue(queue);
        }
        run.start(&ctx, input).await
    }

    async fn get_quick_score(
        &self,
        ctx: OperationContext,
        input: GetQuickScoreInput,
    ) -> OperationResult<GetQuickScoreOutput> {
        self.desk.get_quick_score(ctx, input).await
    }

    async fn flag_user(&self, ctx: OperationContext, input: FlagUserInput) -> OperationResult<()> {
        self.desk.flag_user(ctx, input).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    nexus_examples::logging::init("info");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fraud-worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `HOST:PORT` as `http://HOST:PORT`; URLs as they are; without a trailing slash.
fn base_url(address: &str) -> String {
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    url.trim_end_matches('/').to_owned()
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn tls(args: &Args) -> Result<Option<TemporalTls>, String> {
    if args.tls_ca.is_none() && args.tls_cert.is_none() && args.tls_domain.is_none() {
        return Ok(None);
    }
    let client_identity_pem = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        _ => None,
    };
    Ok(Some(TemporalTls {
        server_root_ca_pem: args.tls_ca.as_ref().map(read).transpose()?,
        domain: args.tls_domain.clone(),
        client_identity_pem,
    }))
}

/// A dispatcher serving `handler`, observed (its starts in the event log, if any).
fn dispatcher(
    handler: impl ServiceHandler,
    log: Option<EventLog>,
    guard: CallbackGuard,
) -> Dispatcher {
    let mut service = Observed::new(handler);
    if let Some(log) = log {
        service = service.event_log(log);
    }
    Dispatcher::builder()
        .service(service)
        .callback_guard(guard)
        .build()
}

async fn run(args: Args) -> Result<(), String> {
    let desk = FraudDesk::new(Duration::from_millis(args.check_delay_ms));
    let log = args
        .event_log
        .as_ref()
        .map(|path| {
            EventLog::create(path)
                .map_err(|e| format!("cannot create the event log {}: {e}", path.display()))
        })
        .transpose()?;
    let guard = match args.callback_allow.is_empty() {
        true => CallbackGuard::loopback(),
        false => CallbackGuard::from_rules(args.callback_allow.clone()),
    };
    let dispatcher = match &args.check_workflow {
        None => dispatcher(FraudService::handler(desk), log.clone(), guard.clone()),
        Some(workflow_type) => dispatcher(
            FraudService::handler(WorkflowChecks {
                desk,
                workflow_type: workflow_type.clone(),
                task_queue: args.workflow_task_queue.clone(),
            }),
            log.clone(),
            guard.clone(),
        ),
    };
    let sender = HttpCompletionSender::new().callback_guard(guard);
    let mut builder = TemporalWorker::builder(
        dispatcher.clone(),
        &args.temporal,
        &args.namespace,
        &args.task_queue,
    )
    .pollers(args.pollers)
    .completion_sender(LoggedCompletions::new(sender, log));
    if let Some(http) = &args.temporal_http {
        builder = builder.system_callback_url(format!(
            "{}/namespaces/{}/nexus/callback",
            base_url(http),
            args.namespace
        ));
    }
    if let Some(identity) = &args.identity {
        builder = builder.identity(identity);
    }
    let api_key = args
        .api_key
        .clone()
        .or_else(|| std::env::var("TEMPORAL_API_KEY").ok())
        .filter(|k| !k.is_empty());
    if let Some(key) = &api_key {
        builder = builder.api_key(key);
    }
    if let Some(tls) = tls(&args)? {
        builder = builder.tls(tls);
    }
    let worker = builder.connect().await.map_err(|e| e.to_string())?;
    let identity = worker.identity().to_owned();
    let running = worker.start();
    // The one line on stdout: the worker is polling.
    println!(
        "polling {}/{} as {identity}",
        args.namespace, args.task_queue
    );
    tracing::info!(
        temporal = %args.temporal,
        namespace = %args.namespace,
        task_queue = %args.task_queue,
        check_workflow = ?args.check_workflow,
        check_delay_ms = args.check_delay_ms,
        "serving fraud.v1 from Temporal"
    );
    stop_signal().await?;
    tracing::info!("stopping: finishing the tasks in hand");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() -> Result<(), String> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| format!("cannot watch Ctrl-C: {e}")),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("cannot watch Ctrl-C: {e}"))
    }
}
