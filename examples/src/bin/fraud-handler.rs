//! The fraud team's process: serves `fraud.v1` (implemented by `FraudDesk`) as Nexus RPC over
//! HTTP, until Ctrl-C or SIGTERM.
//!
//! Run: `cargo run -p nexus-examples --bin fraud-handler -- --listen 127.0.0.1:7243`
//! (`RUST_LOG=debug` shows every request.)
//!
//! Durable by default: its records live in `./.nexus-data/fraud-handler.sqlite3` (`--store`
//! chooses another file, a `postgres://` URL, or `none`), so a retried start is answered from the
//! store, completions are retried across restarts, and a check running when the process died is
//! run again by the next one. `--executions-log FILE` records every method actually run (see
//! `nexus_examples::executions`), so a crash test can count executions per request id.
//!
//! TLS: `--tls-cert FILE --tls-key FILE` serve HTTPS, `--client-ca FILE` requires client
//! certificates signed by that CA (mTLS), `--callback-ca FILE` trusts that CA for `https://`
//! callback URLs; SIGHUP re-reads the certificate files. `nexus-certs` makes demo certificates.
//!
//! For tests of callers (the Temporal interop test uses both): `--event-log FILE` records every
//! start (with its request id) and every completion attempt (with its token and state) as JSON
//! lines, and `--unavailable-first N` answers UNAVAILABLE (503) to the first N attempts of each
//! request id. See `nexus_examples::observe`. With a store, the store answers retried starts
//! before they reach the observed service, and each completion attempt of the outbox is logged.
//!
//! Fault tests: `--disk-full-file FILE` makes the SQLite store full while FILE exists, and gives
//! it room again, without a restart, once FILE is removed (see `nexus_examples::disk_full`).
//!
//! The definition of fraud.v1 is served at `GET {prefix}/definitions` (`nexus definition export`).
//!
//! Callers: `--allow-caller payments --token payments=SECRET` lets only `payments` call, with
//! `Authorization: Bearer SECRET` or a verified client certificate naming it.
//!
//! Operators: `--admin-listen 127.0.0.1:9101 --admin-token TOKEN` serves Prometheus metrics at
//! `/metrics`, the page of running checks and failed completion deliveries at `/ops` (open
//! `/ops#token=TOKEN`), and the JSON API under `/api` (redeliver a dead completion).

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::Parser;
use fraud_contract::FraudService;
use nexus_examples::admin_flags::AdminArgs;
use nexus_examples::callers::caller_auth;
use nexus_examples::disk_full::DiskFullArgs;
use nexus_examples::executions::ExecutionLog;
use nexus_examples::fraud_desk::FraudDesk;
use nexus_examples::observe::{EventLog, LoggedCompletions, Observed};
use nexus_examples::store_flag::open_store;
use nexus_examples::tls_flags::HandlerTlsArgs;
use nexus_runtime::definition::Definition;
use nexus_runtime::http::{
    CompletionRetry, DEFAULT_MAX_CONNECTIONS, HandlerServer, HttpCompletionSender, ServerLimits,
};
use nexus_runtime::security::{CallbackGuard, CallbackRule};
use nexus_runtime::service::{Dispatcher, DurabilityOptions, OutboxOptions};

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
    /// Where the handler keeps its records: an SQLite file (created, with its directory, if
    /// missing; not a directory), a `postgres://` URL, or `none` (no deduplication, nothing
    /// survives a restart).
    #[arg(
        long,
        value_name = "PATH_OR_URL",
        default_value = "./.nexus-data/fraud-handler.sqlite3"
    )]
    store: String,
    /// This process's owner id in the store: keep it across restarts; give each replica sharing
    /// a PostgreSQL store its own.
    #[arg(long, value_name = "ID", default_value = "fraud-handler")]
    owner: String,
    /// Append one JSON line per operation method run (not replayed) to FILE, fsynced.
    #[arg(long, value_name = "FILE")]
    executions_log: Option<PathBuf>,
    /// How long a completion being sent stays hidden from other senders, in milliseconds: after
    /// a crash mid-delivery, the next process sends it again that long after [default: 60 s].
    #[arg(long, value_name = "MS")]
    outbox_visibility_ms: Option<u64>,
    /// Answer UNAVAILABLE (503, retryable) to the first N attempts of each request id.
    #[arg(long, value_name = "N", default_value_t = 0)]
    unavailable_first: u32,
    /// Record every start and every completion sent in FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// Allow completions to callback URLs matching RULE, `[http://|https://]HOST[:PORT]` with `*`
    /// for whole host labels or any port (repeatable). Non-public addresses need a rule naming
    /// them exactly. Without this option, only this machine's loopback addresses are allowed
    /// (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`).
    #[arg(long = "callback-allow", value_name = "RULE")]
    callback_allow: Vec<CallbackRule>,
    /// Only this caller may call fraud.v1 (repeatable); callers must then authenticate.
    #[arg(long, value_name = "NAME")]
    allow_caller: Vec<String>,
    /// Accept `Authorization: Bearer TOKEN` as the caller NAME (repeatable).
    #[arg(long, value_name = "NAME=TOKEN")]
    token: Vec<String>,
    #[command(flatten)]
    tls: HandlerTlsArgs,
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    disk_full: DiskFullArgs,
    /// Connections open at once; more are refused (closed at once, logged).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    nexus_examples::logging::init("info");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fraud-handler: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut desk = FraudDesk::new(Duration::from_millis(args.check_delay_ms));
    if let Some(path) = &args.executions_log {
        let log = ExecutionLog::open(path)
            .map_err(|e| format!("cannot open the executions log {}: {e}", path.display()))?;
        desk = desk.with_execution_log(log);
    }
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
    let guard = match args.callback_allow.is_empty() {
        true => CallbackGuard::loopback(),
        false => CallbackGuard::from_rules(args.callback_allow.clone()),
    };
    let mut builder = Dispatcher::builder()
        .service(service)
        .callback_guard(guard.clone());
    let auth = caller_auth("fraud.v1", &args.allow_caller, &args.token)?;
    if let Some((_, policy)) = &auth {
        builder = builder.access(policy.clone());
    }
    let opened = open_store(&args.store).await?;
    // Kept until the process stops: the store is full while the file exists.
    let _disk_full = args.disk_full.watch(opened.sqlite.as_ref()).await?;
    let store = opened.store;
    // With a store, the outbox retries (durably): each send is one attempt.
    let mut sender = HttpCompletionSender::new().callback_guard(guard.clone());
    if let Some(tls) = args.tls.completions()? {
        sender = sender.tls(tls).map_err(|e| e.to_string())?;
    }
    if store.is_some() {
        sender = sender.retry(CompletionRetry::never());
    }
    if let Some(store) = store {
        let mut durability = DurabilityOptions::default().owner(&args.owner);
        if let Some(ms) = args.outbox_visibility_ms {
            durability =
                durability.outbox(OutboxOptions::default().visibility(Duration::from_millis(ms)));
        }
        builder = builder.store(store).durability(durability);
    }
    let dispatcher = builder.build();
    let mut limits = ServerLimits::default();
    limits.max_connections = args.max_connections;
    let mut server = HandlerServer::builder(dispatcher.clone())
        .prefix(&args.prefix)
        .definitions(Definition::of::<FraudService>())
        .limits(limits)
        .completion_sender(LoggedCompletions::new(sender, log));
    if let Some(tls) = args.tls.server()? {
        server = server.tls(tls);
    }
    if let Some((authenticator, _)) = auth {
        server = server.authenticator(authenticator);
    }
    let server = server.build();
    let running = server
        .bind(args.listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let admin = args.admin.serve(None, Some(dispatcher.clone())).await?;
    // The one line on stdout: the base URL callers give as their endpoint.
    println!("listening on {}{}", running.url(), server.prefix());
    tracing::info!(
        addr = %running.local_addr(),
        prefix = %args.prefix,
        check_delay_ms = args.check_delay_ms,
        store = %args.store,
        owner = %args.owner,
        unavailable_first = args.unavailable_first,
        callback_rules = ?guard,
        allowed_callers = ?args.allow_caller,
        "serving fraud.v1"
    );
    stop_signal().await?;
    tracing::info!("stopping");
    running
        .shutdown()
        .await
        .map_err(|e| format!("shutdown: {e}"))?;
    if let Some(admin) = admin {
        let _ = admin.shutdown().await;
    }
    // Checks still running stay in the store, for the next process to run again.
    dispatcher.shutdown().await;
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
