//! `nexus ops list | show | cancel` (a caller's operations) and `nexus deliveries list | retry`
//! (a handler's dead completion deliveries), on a store: an SQLite file or a PostgreSQL URL.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anstyle::Style;
use nexus_runtime::store::{
    CallerRecord, CancelRequestOutcome, Delivery, OperationId, PostgresStore, SqliteStore, Store,
};
use serde_json::{Value, json};

use crate::fail::Failure;

/// Which store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The store: an SQLite file (it must exist) or a `postgres://` URL (or set NEXUS_STORE).
    #[arg(long, value_name = "PATH_OR_URL", env = "NEXUS_STORE")]
    pub store: String,
}

/// `nexus ops …`.
#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {
    /// List operations, newest first: unfinished ones, or with --all finished ones too.
    List {
        /// Finished operations too.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one operation: state, attempts, last failure, token, times, result or error.
    Show {
        /// Its operation id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Ask for an operation to be canceled: recorded in the store; the client that drives it
    /// sends the cancel request when it re-reads the record (clients with replicas, at their
    /// poll interval), or when it resumes the operation after a restart.
    Cancel {
        /// Its operation id.
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `nexus deliveries …`.
#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List dead completion deliveries (given up), most recent first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Put a dead delivery back in the outbox, due now: the handler's outbox sends it again.
    Retry {
        /// Its delivery id.
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

async fn open(args: &StoreArgs) -> Result<Arc<dyn Store>, Failure> {
    let spec = args.store.as_str();
    let cannot = |e: String| Failure::no_answer(format!("cannot open the store {spec}: {e}"));
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = PostgresStore::connect(spec)
            .await
            .map_err(|e| cannot(e.to_string()))?;
        return Ok(Arc::new(store));
    }
    if !Path::new(spec).exists() {
        return Err(Failure::usage(format!("no store at {spec}")));
    }
    let store = SqliteStore::open(spec)
        .await
        .map_err(|e| cannot(e.to_string()))?;
    Ok(Arc::new(store))
}

fn parse_id(id: &str) -> Result<OperationId, Failure> {
    OperationId::parse_str(id).map_err(|e| Failure::usage(format!("`{id}` is not an id: {e}")))
}

fn time(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(humantime::format_rfc3339_millis(t).to_string())
    })
}

/// What `handle.info()` shows of an operation, and what the record adds, in reading order.
fn fields(record: &CallerRecord) -> Vec<(&'static str, Value)> {
    let result = record.result.as_ref().map(|content| {
        nexus_runtime::codec::decode::<Value>(content).unwrap_or_else(
            |_| json!({"contentType": content.content_type(), "bytes": content.data.len()}),
        )
    });
    vec![
        ("id", json!(record.id.to_string())),
        ("state", json!(record.state.as_str())),
        ("endpoint", json!(record.endpoint)),
        ("service", json!(record.service)),
        ("operation", json!(record.operation)),
        ("requestId", json!(record.request_id)),
        ("token", json!(record.token)),
        ("attempt", json!(record.attempt)),
        (
            "lastFailure",
            json!(record.last_failure.as_ref().map(|f| f.message.clone())),
        ),
        ("nextAttemptAt", time(record.next_attempt_at)),
        ("target", json!(record.target)),
        ("scheduledAt", time(Some(record.scheduled_at))),
        ("startedAt", time(record.started_at)),
        ("closedAt", time(record.closed_at)),
        ("cancelRequestedAt", time(record.cancel_requested_at)),
        (
            "scheduleToCloseDeadline",
            time(record.deadlines.schedule_to_close),
        ),
        (
            "scheduleToStartDeadline",
            time(record.deadlines.schedule_to_start),
        ),
        (
            "startToCloseDeadline",
            time(record.deadlines.start_to_close),
        ),
        (
            "lease",
            json!(record.lease.as_ref().map(|l| format!(
                "{} until {}",
                l.owner,
                humantime::format_rfc3339_millis(l.expires_at)
            ))),
        ),
        ("result", json!(result)),
        (
            "error",
            json!(record.error.as_ref().map(|f| f.message.clone())),
        ),
    ]
}

/// The operation as a JSON object (keys sorted).
fn describe(record: &CallerRecord) -> Value {
    Value::Object(
        fields(record)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn print_pretty(value: &Value) {
    anstream::println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Runs `nexus ops …`.
pub async fn ops(command: OpsCommand) -> Result<(), Failure> {
    match command {
        OpsCommand::List {
            all,
            limit,
            json,
            store,
        } => {
            let opened = open(&store).await?;
            let store_error = |e: String| Failure::no_answer(format!("store: {e}"));
            let mut records = if all {
                opened
                    .list_recent_operations(limit as usize)
                    .await
                    .map_err(|e| store_error(e.to_string()))?
            } else {
                let mut records = opened
                    .list_unfinished()
                    .await
                    .map_err(|e| store_error(e.to_string()))?;
                records.reverse();
                records.truncate(limit as usize);
                records
            };
            records.sort_by_key(|r| std::cmp::Reverse(r.scheduled_at));
            if json {
                print_pretty(&Value::Array(records.iter().map(describe).collect()));
                return Ok(());
            }
            if records.is_empty() {
                anstream::println!("no operations");
                return Ok(());
            }
            let bold = Style::new().bold();
            anstream::println!(
                "{bold}{:<36}  {:<11}  {:<44}  {:>7}  SCHEDULED{bold:#}",
                "ID",
                "STATE",
                "ENDPOINT SERVICE/OPERATION",
                "ATTEMPT"
            );
            for r in &records {
                anstream::println!(
                    "{:<36}  {:<11}  {:<44}  {:>7}  {}",
                    r.id,
                    r.state.as_str(),
                    format!("{} {}/{}", r.endpoint, r.service, r.operation),
                    r.attempt,
                    humantime::format_rfc3339_seconds(r.scheduled_at)
                );
            }
            Ok(())
        }
        OpsCommand::Show { id, json, store } => {
            let id = parse_id(&id)?;
            let opened = open(&store).await?;
            let record = opened
                .get(id)
                .await
                .map_err(|e| Failure::no_answer(format!("store: {e}")))?
                .ok_or_else(|| Failure::usage(format!("no operation {id} in the store")))?;
            if json {
                print_pretty(&describe(&record));
                return Ok(());
            }
            let bold = Style::new().bold();
            for (name, value) in fields(&record) {
                let text = match value {
                    Value::Null => continue,
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                anstream::println!("{bold}{name:<24}{bold:#}{text}");
            }
            Ok(())
        }
        OpsCommand::Cancel { id, store } => {
            let id = parse_id(&id)?;
            let opened = open(&store).await?;
            let outcome = opened
                .request_cancel(id, SystemTime::now())
                .await
                .map_err(|e| Failure::no_answer(format!("store: {e}")))?;
            match outcome {
                CancelRequestOutcome::Requested => {
                    anstream::eprintln!(
                        "cancel requested for {id}: the process driving it sends the cancel request"
                    );
                    Ok(())
                }
                CancelRequestOutcome::AlreadyRequested => {
                    anstream::eprintln!("a cancel was already requested for {id}");
                    Ok(())
                }
                CancelRequestOutcome::AlreadyFinished => {
                    Err(Failure::usage(format!("operation {id} already finished")))
                }
                CancelRequestOutcome::UnknownOperation => {
                    Err(Failure::usage(format!("no operation {id} in the store")))
                }
            }
        }
    }
}

fn describe_delivery(d: &Delivery) -> Value {
    json!({
        "id": d.id.to_string(),
        "token": d.completion.token,
        "completionState": d.completion.state(),
        "url": nexus_runtime::security::redact_callback_url(&d.url),
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "lastError": d.last_error,
        "createdAt": time(Some(d.created_at)),
        "finishedAt": time(d.finished_at),
    })
}

/// Runs `nexus deliveries …`.
pub async fn deliveries(command: DeliveriesCommand) -> Result<(), Failure> {
    match command {
        DeliveriesCommand::List { limit, json, store } => {
            let opened = open(&store).await?;
            let dead = opened
                .list_dead_deliveries(limit)
                .await
                .map_err(|e| Failure::no_answer(format!("store: {e}")))?;
            if json {
                print_pretty(&Value::Array(dead.iter().map(describe_delivery).collect()));
            } else if dead.is_empty() {
                anstream::println!("no dead deliveries");
            } else {
                for d in &dead {
                    anstream::println!(
                        "{}  token {}  {} attempts  {}",
                        d.id,
                        d.completion.token,
                        d.attempts,
                        d.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        DeliveriesCommand::Retry { id, store } => {
            let parsed = parse_id(&id)?;
            let opened = open(&store).await?;
            let redelivered = opened
                .redeliver(parsed, SystemTime::now())
                .await
                .map_err(|e| Failure::no_answer(format!("store: {e}")))?;
            if !redelivered {
                return Err(Failure::usage(format!(
                    "no dead delivery {id} in the store"
                )));
            }
            anstream::eprintln!("delivery {id} is pending again: the handler's outbox sends it");
            Ok(())
        }
    }
}
