//! The async round trip over HTTP: start (`checkTransaction`), 201 with a token, completion by
//! callback to the caller's receiver, caller resolves; and the memory each pending async
//! operation takes in the caller and in the handler.
//!
//! The handler runs in a child process (`nexus-bench serve --kind nexus`); the caller (a
//! `fraud.v1` stub over `HttpTransport`, with a `CallbackListener`) runs here.
//!
//! State: `--store memory` (the default) gives the caller no store (its private memory store,
//! which keeps nothing once an operation ends) and the handler none. `--store sqlite:DIR` gives
//! each side an SQLite store in data directory `DIR` (`caller.sqlite3`, `handler.sqlite3`; WAL,
//! each commit flushed to disk before its writes are answered): every operation is recorded before its first attempt and at every
//! transition by the caller, and deduplicated, recorded and completed through the outbox by the
//! handler. Both files are made afresh for each measurement.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fraud_contract::{CheckTransactionInput, FraudClient};
use nexus_runtime::client::EndpointConfig;
use nexus_runtime::machinery::Limits;
use nexus_runtime::server::{CallbackListener, ServerHandle};
use nexus_runtime::store::{CallerStore, SqliteDurability, SqliteStore};
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{Client, OperationHandle};
use tokio::time::Instant;

use crate::proc::{ChildServer, own_cpu_time, own_rss};
use crate::stats::LoadSummary;

/// Where operation state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// In memory: no store on either side.
    Memory,
    /// SQLite stores in this data directory, one file for each side, with commits that survive
    /// what the durability says (`sqlite:DIR` a power loss, `sqlite-crash:DIR` a process crash).
    Sqlite(PathBuf, SqliteDurability),
}

impl FromStr for Store {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let sqlite = |prefix: &str, durability| {
            s.strip_prefix(prefix)
                .filter(|dir| !dir.is_empty())
                .map(|dir| Self::Sqlite(dir.into(), durability))
        };
        match s {
            "memory" => Ok(Self::Memory),
            _ => sqlite("sqlite:", SqliteDurability::PowerLoss)
                .or_else(|| sqlite("sqlite-crash:", SqliteDurability::ProcessCrash))
                .ok_or_else(|| {
                    format!(
                        "unknown store `{s}`: expected `memory`, `sqlite:DIR` or \
                         `sqlite-crash:DIR` (DIR a data directory)"
                    )
                }),
        }
    }
}

/// The caller's database file in a data directory.
const CALLER_FILE: &str = "caller.sqlite3";
/// The handler's database file in a data directory.
const HANDLER_FILE: &str = "handler.sqlite3";

impl Store {
    /// A label for tables.
    pub fn label(&self) -> String {
        match self {
            Self::Memory => "no store: in-memory state".into(),
            Self::Sqlite(dir, durability) => format!(
                "SQLite stores, caller and handler one file each in {} (WAL, {})",
                dir.display(),
                match durability {
                    SqliteDurability::ProcessCrash => "synchronous = NORMAL, no flush",
                    _ => "each commit flushed to disk before it is answered",
                }
            ),
        }
    }

    /// The arguments that give the handler process this store.
    fn serve_args(&self) -> Vec<String> {
        match self {
            Self::Memory => vec!["--store".into(), "memory".into()],
            Self::Sqlite(dir, durability) => {
                let scheme = match durability {
                    SqliteDurability::ProcessCrash => "sqlite-crash",
                    _ => "sqlite",
                };
                vec!["--store".into(), format!("{scheme}:{}", dir.display())]
            }
        }
    }

    /// Removes the SQLite files a previous measurement left (only this benchmark's own files),
    /// so that every measurement starts with empty stores.
    pub fn start_afresh(&self) -> io::Result<()> {
        let Self::Sqlite(dir, _) = self else {
            return Ok(());
        };
        for file in [CALLER_FILE, HANDLER_FILE] {
            for suffix in ["", "-wal", "-shm"] {
                match std::fs::remove_file(dir.join(format!("{file}{suffix}"))) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The caller's store, if any.
    pub async fn caller_store(&self) -> io::Result<Option<Arc<dyn CallerStore>>> {
        match self {
            Self::Memory => Ok(None),
            Self::Sqlite(dir, durability) => Ok(Some(Arc::new(
                open(&dir.join(CALLER_FILE), *durability).await?,
            ))),
        }
    }

    /// The handler's store, if any.
    pub async fn handler_store(&self) -> io::Result<Option<Arc<dyn nexus_runtime::store::Store>>> {
        match self {
            Self::Memory => Ok(None),
            Self::Sqlite(dir, durability) => Ok(Some(Arc::new(
                open(&dir.join(HANDLER_FILE), *durability).await?,
            ))),
        }
    }
}

async fn open(path: &Path, durability: SqliteDurability) -> io::Result<SqliteStore> {
    SqliteStore::open_with(path, durability)
        .await
        .map_err(io::Error::other)
}

/// How to run the round-trip benchmark.
#[derive(Clone, Debug)]
pub struct RoundTripOptions {
    /// Operations in flight at once (workers).
    pub concurrency: usize,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Rounds of the throughput measurement (medians are reported).
    pub rounds: usize,
    /// Pending operations for the memory measurement (0: skip it).
    pub pending: usize,
    /// Where state lives.
    pub store: Store,
    /// Worker threads of the handler process and of this process.
    pub threads: usize,
}

/// What the memory measurement found.
#[derive(Clone, Copy, Debug)]
pub struct MemoryReport {
    /// Pending operations held.
    pub pending: usize,
    /// Caller RSS before and with the operations pending, in bytes.
    pub caller_before: u64,
    /// Caller RSS with the operations pending.
    pub caller_after: u64,
    /// Handler RSS before.
    pub handler_before: u64,
    /// Handler RSS with the operations pending.
    pub handler_after: u64,
    /// How long starting them took.
    pub start_time: Duration,
}

impl MemoryReport {
    /// Caller bytes per pending operation.
    pub fn caller_per_op(&self) -> f64 {
        self.caller_after.saturating_sub(self.caller_before) as f64 / self.pending.max(1) as f64
    }

    /// Handler bytes per pending operation.
    pub fn handler_per_op(&self) -> f64 {
        self.handler_after.saturating_sub(self.handler_before) as f64 / self.pending.max(1) as f64
    }
}

/// Everything measured.
#[derive(Clone, Debug)]
pub struct RoundTripReport {
    /// The options used.
    pub options: RoundTripOptions,
    /// Throughput and latency of each round.
    pub rounds: Vec<LoadSummary>,
    /// The memory measurement, if made.
    pub memory: Option<MemoryReport>,
}

fn input(n: u64) -> CheckTransactionInput {
    CheckTransactionInput {
        transaction_id: format!("tx-{n}"),
        amount: 250.0,
        user_id: "user-ada".into(),
    }
}

/// A caller of the handler at `url`: a stub, its client's callback receiver (kept running), and
/// limits that let `concurrency` start requests go out at once; its operations recorded in
/// `store`'s caller store, if any.
async fn caller(
    url: &str,
    concurrency: usize,
    store: &Store,
) -> io::Result<(FraudClient, ServerHandle)> {
    let listener = CallbackListener::bind_loopback().await?;
    let transport = HttpTransport::new(url).map_err(io::Error::other)?;
    let mut builder = Client::builder()
        .endpoint(
            "fraud",
            EndpointConfig::new(transport).limits(
                Limits::default()
                    .max_concurrency(concurrency)
                    .queue_bound(concurrency.max(10_000)),
            ),
        )
        .callback_url(listener.callback_url());
    if let Some(store) = store.caller_store().await? {
        builder = builder.store(store);
    }
    let client = builder.build();
    let receiver = listener.serve(client.clone())?;
    Ok((FraudClient::new(client, "fraud"), receiver))
}

/// Runs the benchmark.
pub fn run(options: &RoundTripOptions) -> io::Result<RoundTripReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()?;
    let mut rounds = Vec::new();
    for round in 0..options.rounds {
        let handler = spawn_handler(options, 0)?;
        let (handler_cpu, caller_cpu) = (handler.cpu_time()?, own_cpu_time()?);
        let mut summary = runtime.block_on(throughput(&handler.url, options))?;
        // CPU per round trip over the whole run (warm-up included): what the operation costs,
        // whatever else the machine is doing.
        summary.set_cpu(
            handler.cpu_time()?.saturating_sub(handler_cpu),
            own_cpu_time()?.saturating_sub(caller_cpu),
        );
        eprintln!(
            "round {}: async round trip, c={}: {:.0} ops/s, p50 {:.0} us, p99 {:.0} us, \
             CPU/op handler {:.0} us caller {:.0} us, {} errors",
            round + 1,
            options.concurrency,
            summary.ops_per_sec,
            summary.p50_us,
            summary.p99_us,
            summary.server_cpu_us,
            summary.client_cpu_us,
            summary.errors
        );
        rounds.push(summary);
    }
    let memory = if options.pending > 0 {
        // Long enough that nothing completes while measuring.
        let handler = spawn_handler(options, 3_600_000)?;
        Some(runtime.block_on(memory(&handler, options))?)
    } else {
        None
    };
    Ok(RoundTripReport {
        options: options.clone(),
        rounds,
        memory,
    })
}

/// The handler process, whose `checkTransaction` takes `check_delay_ms`, on fresh stores.
fn spawn_handler(options: &RoundTripOptions, check_delay_ms: u64) -> io::Result<ChildServer> {
    let mut args = vec![
        "--kind".into(),
        "nexus".into(),
        "--threads".into(),
        options.threads.to_string(),
        "--check-delay-ms".into(),
        check_delay_ms.to_string(),
    ];
    args.extend(options.store.serve_args());
    options.store.start_afresh()?;
    ChildServer::spawn(&args)
}

async fn throughput(url: &str, options: &RoundTripOptions) -> io::Result<LoadSummary> {
    let (fraud, _receiver) = caller(url, options.concurrency, &options.store).await?;
    let start = Instant::now();
    let measure_from = start + options.warmup;
    let stop_at = measure_from + options.duration;
    let mut workers = Vec::new();
    for worker in 0..options.concurrency {
        let fraud = fraud.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut completed = 0u64;
            let mut n = (worker as u64) << 32;
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                n += 1;
                // `.await`: start, 201 + token, then the completion by callback.
                let ok = match fraud.check_transaction(input(n)).await {
                    Ok(verdict) => verdict.approved,
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("round trip failed: {e}");
                        }
                        false
                    }
                };
                let done = Instant::now();
                completed += u64::from(ok);
                if sent >= measure_from && done <= stop_at {
                    if ok {
                        latencies.push(done - sent);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors, completed)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut total = 0;
    for worker in workers {
        let (latencies, e, c) = worker.await.map_err(io::Error::other)?;
        all.extend(latencies);
        errors += e;
        total += c;
    }
    Ok(LoadSummary::new(all, errors, options.duration, total))
}

async fn memory(handler: &ChildServer, options: &RoundTripOptions) -> io::Result<MemoryReport> {
    let (fraud, _receiver) = caller(&handler.url, options.concurrency, &options.store).await?;
    // Warm up: connections open, lazy statics set, allocator arenas in use on every thread.
    let warm: Vec<OperationHandle<_>> =
        start_many(&fraud, options.concurrency * 4, options.concurrency, 0).await?;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caller_before = own_rss()?;
    let handler_before = handler.rss()?;
    let started = Instant::now();
    let handles = start_many(&fraud, options.pending, options.concurrency, 1 << 40).await?;
    let start_time = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = MemoryReport {
        pending: handles.len(),
        caller_before,
        caller_after: own_rss()?,
        handler_before,
        handler_after: handler.rss()?,
        start_time,
    };
    // Every operation is still pending (none completes for an hour).
    let done = handles.iter().filter(|h| h.is_done()).count();
    if done > 0 {
        return Err(io::Error::other(format!(
            "{done} operations ended while they should all be pending"
        )));
    }
    drop(handles);
    Ok(report)
}

/// Starts `count` async operations on the handler at `url` and holds them pending for `hold`
/// (to look at the handler's memory from outside, under a heap profiler for instance).
pub async fn hold_pending(
    url: &str,
    count: usize,
    concurrency: usize,
    hold: Duration,
) -> io::Result<()> {
    let (fraud, _receiver) = caller(url, concurrency, &Store::Memory).await?;
    let handles = start_many(&fraud, count, concurrency, 0).await?;
    eprintln!("{} operations pending", handles.len());
    tokio::time::sleep(hold).await;
    Ok(())
}

/// Starts `count` async operations from `concurrency` tasks; returns their handles once every
/// one has started (has its token).
async fn start_many(
    fraud: &FraudClient,
    count: usize,
    concurrency: usize,
    first_id: u64,
) -> io::Result<Vec<OperationHandle<fraud_contract::fraud::CheckTransaction>>> {
    let per_task = count.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let fraud = fraud.clone();
        let from = task * per_task;
        let to = ((task + 1) * per_task).min(count);
        tasks.push(tokio::spawn(async move {
            let mut handles = Vec::with_capacity(to.saturating_sub(from));
            for n in from..to {
                let handle = fraud
                    .check_transaction(input(first_id + n as u64))
                    .start()
                    .await
                    .map_err(io::Error::other)?;
                if handle.token().is_none() {
                    return Err(io::Error::other("checkTransaction answered synchronously"));
                }
                handles.push(handle);
            }
            io::Result::Ok(handles)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await.map_err(io::Error::other)??);
    }
    Ok(all)
}

impl RoundTripReport {
    /// The tables, in Markdown.
    pub fn tables(&self) -> String {
        let o = &self.options;
        let m = LoadSummary::median_of(&self.rounds);
        // No throughput table without rounds (`--rounds 0`: the memory measurement only).
        let mut out = if self.rounds.is_empty() {
            String::new()
        } else {
            format!(
                "Async round trip over HTTP ({store}; start -> 201 -> completion by callback -> caller \
             resolves; handler and caller in separate processes, {threads} worker threads each; \
             median of {rounds} rounds, {warm:.1} s warm-up + {dur:.1} s measured; CPU per \
             round trip of each process over the whole run)\n\n\
             | concurrency | ops/s | p50 µs | p99 µs | errors | handler CPU µs/op | caller CPU µs/op |\n\
             |---:|---:|---:|---:|---:|---:|---:|\n\
             | {c} | {ops:.0} | {p50:.0} | {p99:.0} | {err} | {hcpu:.0} | {ccpu:.0} |\n",
                store = o.store.label(),
                threads = o.threads,
                rounds = self.rounds.len(),
                warm = o.warmup.as_secs_f64(),
                dur = o.duration.as_secs_f64(),
                c = o.concurrency,
                ops = m.ops_per_sec,
                p50 = m.p50_us,
                p99 = m.p99_us,
                err = m.errors,
                hcpu = m.server_cpu_us,
                ccpu = m.client_cpu_us,
            )
        };
        if let Some(mem) = &self.memory {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            out += &format!(
                "\nMemory per pending async operation ({store}; {n} operations started from {c} \
                 tasks in {secs:.1} s, all pending; RSS delta / {n})\n\n\
                 | process | RSS before | RSS with {n} pending | per pending operation |\n\
                 |---|---:|---:|---:|\n\
                 | caller (stub + HttpTransport + callback receiver) | {cb:.1} MiB | {ca:.1} MiB | {cp:.0} B |\n\
                 | handler (HandlerServer + FraudDesk) | {hb:.1} MiB | {ha:.1} MiB | {hp:.0} B |\n",
                store = o.store.label(),
                n = mem.pending,
                c = o.concurrency,
                secs = mem.start_time.as_secs_f64(),
                cb = mib(mem.caller_before),
                ca = mib(mem.caller_after),
                cp = mem.caller_per_op(),
                hb = mib(mem.handler_before),
                ha = mib(mem.handler_after),
                hp = mem.handler_per_op(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_parse() {
        assert_eq!("memory".parse::<Store>(), Ok(Store::Memory));
        assert_eq!(
            "sqlite:/tmp/bench".parse::<Store>(),
            Ok(Store::Sqlite(
                "/tmp/bench".into(),
                SqliteDurability::PowerLoss
            ))
        );
        assert!("sqlite:".parse::<Store>().is_err());
        assert!("postgres".parse::<Store>().is_err());
    }

    #[tokio::test]
    async fn sqlite_stores_are_made_afresh_one_file_per_side() {
        let dir = std::env::temp_dir().join(format!("nexus-bench-{}", std::process::id()));
        let store = Store::Sqlite(dir.clone(), SqliteDurability::PowerLoss);
        assert!(store.caller_store().await.expect("opened").is_some());
        assert!(store.handler_store().await.expect("opened").is_some());
        assert!(dir.join(CALLER_FILE).exists() && dir.join(HANDLER_FILE).exists());
        store.start_afresh().expect("removed");
        assert!(!dir.join(CALLER_FILE).exists() && !dir.join(HANDLER_FILE).exists());
        std::fs::remove_dir_all(&dir).expect("removed");
        assert!(Store::Memory.caller_store().await.expect("none").is_none());
    }
}
