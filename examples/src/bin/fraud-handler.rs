//! The fraud team's process: serves `fraud.v1` (implemented by `FraudDesk`) as Nexus RPC over
//! HTTP, until Ctrl-C or SIGTERM.
//!
//! Run: `cargo run -p nexus-examples --bin fraud-handler -- --listen 127.0.0.1:7243`
//! (`RUST_LOG=debug` shows every request.)
//!
//! For tests of callers (the Temporal interop test uses both): `--event-log FILE` records every
//! start (with its request id) and every completion sent (with its token and state) as JSON
//! lines, and `--unavailable-first N` answers UNAVAILABLE (503) to the first N attempts of each
//! request id. See `nexus_examples::observe`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fraud_contract::FraudService;
use nexus_examples::fraud_desk::FraudDesk;
use nexus_examples::observe::{EventLog, LoggedCompletions, Observed};
use nexus_runtime::server::{HandlerServer, HttpCompletionSender};
use nexus_runtime::service::Dispatcher;

/// Serves the fraud team's `fraud.v1` service over Nexus RPC over HTTP.
#[derive(Debug, Parser)]
#[command(name = "fraud-handler", version)]
struct Args {
    /// Address to listen on, such as 127.0.0.1:7243 (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7243")]
    listen: String,
    /// How long an asynchronous `checkTransaction` takes, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 300)]
    check_delay_ms: u64,
    /// The path the service is served under (a Temporal endpoint's target URL may add one).
    #[arg(long, value_name = "PATH", default_value = "/")]
    prefix: String,
    /// Answer UNAVAILABLE (503, retryable) to the first N attempts of each request id.
    #[arg(long, value_name = "N", default_value_t = 0)]
    unavailable_first: u32,
    /// Record every start and every completion sent in FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    event_log: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fraud-handler: {e}");
            ExitCode::FAILURE
        }
    }
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
    let mut service =
        Observed::new(FraudService::handler(desk)).unavailable_first(args.unavailable_first);
    if let Some(log) = &log {
        service = service.event_log(log.clone());
    }
    let dispatcher = Dispatcher::builder().service(service).build();
    let server = HandlerServer::builder(dispatcher)
        .prefix(&args.prefix)
        .completion_sender(LoggedCompletions::new(HttpCompletionSender::new(), log))
        .build();
    let running = server
        .bind(args.listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // The one line on stdout: the base URL callers give as their endpoint.
    println!("listening on {}{}", running.url(), server.prefix());
    tracing::info!(
        addr = %running.local_addr(),
        prefix = %args.prefix,
        check_delay_ms = args.check_delay_ms,
        unavailable_first = args.unavailable_first,
        "serving fraud.v1"
    );
    stop_signal().await?;
    tracing::info!("stopping");
    running
        .shutdown()
        .await
        .map_err(|e| format!("shutdown: {e}"))?;
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
