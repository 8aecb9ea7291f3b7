//! Crash test with real processes: `fraud-handler` and `payments` (load mode, 1,000 async
//! `checkTransaction` operations) run as child processes; each is killed with SIGKILL several
//! times at random points (a seeded schedule) and restarted with the same arguments (same ports,
//! stores, callback address, executions log). Then the harness checks that every operation
//! completed exactly once, with nothing lost:
//!
//! - `payments`' summary: 1,000 succeeded, none failed, canceled or timed out, and as many
//!   approved as the deterministic inputs imply; the caller's record of every request id is
//!   succeeded, with the result the handler's rules give for its input;
//! - every request id has exactly one *answered* start execution (the executions log names the
//!   token each start answers with; the answered one is the token the caller holds and the
//!   handler's store recorded), and no start after it. Every other start execution was
//!   interrupted: its claim was still open in the handler's store when that handler process died
//!   (or the handler warned that it could not record its answer). Those are the documented
//!   at-least-once window: the method ran, the process died before its answer was recorded, and
//!   the caller's retry ran it again;
//! - one recorded operation per token, succeeded; one completion per token, delivered (or sent
//!   again after a kill and still pending, the caller having recorded the first), none given up;
//! - every operation running when a handler died was resumed by the next one (or was still
//!   running when that one died too), and every resumption is of such an operation, once.
//!
//! `--scenario disk-full` (SQLite only) kills nothing: each side's store is full once instead
//! (capped through the processes' `--disk-full-file`, seeded points and lengths), then has room
//! again while the same processes run on; `run/disk_full.rs` lists what it checks besides.
//!
//! Usage: `crash-test --store sqlite|postgres [--scenario kills|disk-full] [--seed S] [--count N] ...` (build the binaries
//! first: `cargo build -p nexus-examples --bins`; `scripts/test.sh` runs it on both stores).
//! PostgreSQL: `--postgres-url` or `NEXUS_TEST_POSTGRES_URL`; each run creates two databases
//! and drops them when it passes. Exits non-zero on any violation, printing the seed and keeping
//! the work directory (logs, SQLite files) for inspection.

mod children;
mod plan;
mod run;
mod stores;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nexus_examples::executions::ExecutionLog;
use nexus_examples::load::request_id;

use crate::children::Setup;
use crate::plan::{Kill, Plan};
use crate::stores::{StoreKind, Stores};
use crate::verify::{Findings, Inputs};

/// Kills fraud-handler and payments at random points of a load run and checks that every
/// operation completed exactly once.
#[derive(Debug, Parser)]
#[command(name = "crash-test", version)]
struct Args {
    /// Where both processes keep their records (each its own file or database).
    #[arg(long, value_enum)]
    store: StoreKind,
    /// The PostgreSQL server for `--store postgres` [default: $NEXUS_TEST_POSTGRES_URL].
    #[arg(long, value_name = "URL")]
    postgres_url: Option<String>,
    /// What happens to the processes: SIGKILLs and restarts, or full disks (each side's SQLite
    /// store full once, for seconds, then with room again; SQLite only; no kills).
    #[arg(long, value_enum, default_value_t = Scenario::Kills)]
    scenario: Scenario,
    /// The seed of the kill schedule [default: a random one, printed].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// How many checks the run has.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..))]
    count: u64,
    /// How many checks payments keeps in flight.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: u32,
    /// How long each check takes in the handler [default: drawn from the seed, 200 to 500 ms].
    #[arg(long, value_name = "MS")]
    check_delay_ms: Option<u64>,
    /// How many times the handler is killed.
    #[arg(long, value_name = "K", default_value_t = 3)]
    handler_kills: u32,
    /// How many times payments is killed.
    #[arg(long, value_name = "K", default_value_t = 3)]
    payments_kills: u32,
    /// Gives up (a failure) after this long.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout_secs: u64,
    /// Where the fraud-handler and payments binaries are [default: next to this one].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Where logs and SQLite files go [default: a new directory under the temporary one,
    /// removed when the run passes].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

/// What a run does to the processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Kills with SIGKILL, and restarts.
    Kills,
    /// Full disks, and room again, without restarts.
    DiskFull,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    let store = args.store.name();
    let outcome = tokio::select! {
        outcome = crash_test(&args, seed) => outcome,
        signal = stop_signal() => Err(format!("stopped by {signal}")),
    };
    // Every child process was killed when `crash_test` returned or was dropped.
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("crash-test {store}: FAILED (seed {seed}): {e}");
            let scenario = match args.scenario {
                Scenario::Kills => "",
                Scenario::DiskFull => " --scenario disk-full",
            };
            println!("  rerun: crash-test --store {store}{scenario} --seed {seed}");
            ExitCode::FAILURE
        }
    }
}

async fn crash_test(args: &Args, seed: u64) -> Result<(), String> {
    let store = args.store.name();
    let disk_full = args.scenario == Scenario::DiskFull;
    if disk_full && args.store != StoreKind::Sqlite {
        return Err("--scenario disk-full fills SQLite stores: give --store sqlite".into());
    }
    let plan = if disk_full {
        Plan::disk_full(seed, args.count, args.check_delay_ms)
    } else {
        Plan::new(
            seed,
            args.count,
            args.handler_kills,
            args.payments_kills,
            args.check_delay_ms,
        )
    };
    let tag = format!(
        "crash_{seed}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (dir, remove_dir) = match &args.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("nexus-{tag}-{store}")),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let postgres_url = args
        .postgres_url
        .clone()
        .or_else(|| std::env::var("NEXUS_TEST_POSTGRES_URL").ok());
    let stores = Stores::create(args.store, &dir, postgres_url.as_deref(), &tag).await?;
    let bins = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .ok_or("cannot tell where this binary is; give --bin-dir")?,
    };
    let setup = Setup {
        handler_bin: binary(&bins, "fraud-handler")?,
        payments_bin: binary(&bins, "payments")?,
        dir: dir.clone(),
        handler_port: free_port()?,
        callback_port: free_port()?,
        handler_store: stores.handler.clone(),
        caller_store: stores.caller.clone(),
        executions_log: dir.join("executions.jsonl"),
        check_delay_ms: plan.check_delay_ms,
        count: args.count,
        concurrency: args.concurrency,
        run_id: format!("crash-{seed}"),
        disk_full,
    };
    if setup.handler_port == setup.callback_port {
        return Err("the OS gave the same free port twice; run again".into());
    }
    println!(
        "crash-test {store}: seed {seed}, {} checks ({} in flight, {} ms each), {}, work dir {}",
        args.count,
        args.concurrency,
        plan.check_delay_ms,
        stores.describe(),
        dir.display()
    );
    for event in &plan.events {
        let what = match event.kill {
            Kill::Handler => "kill fraud-handler".to_owned(),
            Kill::Payments => "kill payments".to_owned(),
            Kill::Both {
                handler_first,
                gap_ms,
                ..
            } => format!(
                "kill both ({} first, {gap_ms} ms apart)",
                if handler_first { "handler" } else { "payments" }
            ),
        };
        println!(
            "  plan: {what} at {} starts (+{} ms), down {} ms",
            event.at_starts, event.delay_ms, event.down_ms
        );
    }
    for full in &plan.disk_full {
        println!(
            "  plan: the store of {} full at {} starts, for {} ms",
            full.side.name(),
            full.at_starts,
            full.full_ms
        );
    }

    let timeout = Duration::from_secs(args.timeout_secs);
    let trace = run::run(&setup, &stores, &plan, timeout).await;
    let checked = match trace {
        Ok(trace) => check(&setup, &stores, &trace, &plan).await,
        Err(e) => Err(e),
    };
    let findings = match checked {
        Ok(findings) => findings,
        Err(e) => return Err(format!("{e}\n  work dir kept: {}", dir.display())),
    };
    if !findings.violations.is_empty() {
        let shown = findings.violations.len().min(30);
        let mut message = format!("{} violations:", findings.violations.len());
        for violation in &findings.violations[..shown] {
            message.push_str("\n  - ");
            message.push_str(violation);
        }
        if shown < findings.violations.len() {
            message.push_str(&format!(
                "\n  ... and {} more",
                findings.violations.len() - shown
            ));
        }
        message.push_str(&format!(
            "\n  work dir kept: {}{}",
            dir.display(),
            if args.store == StoreKind::Postgres {
                format!(" ({} kept)", stores.describe())
            } else {
                String::new()
            }
        ));
        return Err(message);
    }
    stores.drop_databases().await?;
    if remove_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Reads the log and both stores, runs the checks, prints the report.
async fn check(
    setup: &Setup,
    stores: &Stores,
    trace: &run::Trace,
    plan: &Plan,
) -> Result<Findings, String> {
    let executions = ExecutionLog::read_with_offsets(&setup.executions_log).map_err(|e| {
        format!(
            "cannot read the executions log {}: {e}",
            setup.executions_log.display()
        )
    })?;
    let ids: Vec<String> = (0..setup.count)
        .map(|i| request_id(&setup.run_id, i))
        .collect();
    let handler_db = stores.open_handler().await?;
    let handler = handler_db.handler_records().await;
    handler_db.close().await;
    let handler = handler?;
    let caller_db = stores.open_caller().await?;
    let caller = caller_db.caller_records(&ids).await;
    let counts = caller_db.caller_counts().await;
    caller_db.close().await;
    let (caller, (caller_total, _)) = (caller?, counts?);

    let mut findings = verify::check(&Inputs {
        run_id: &setup.run_id,
        count: setup.count,
        trace,
        executions: &executions,
        handler: &handler,
        caller: &caller,
        caller_total,
    });
    findings
        .violations
        .extend(trace.disk_full.violations.iter().cloned());
    let handler_kills = trace.lives.iter().filter(|l| l.crashed).count();
    let payments_kills = trace.payments_kills.len();
    let (planned_handler, planned_payments) = plan.kills();
    if (handler_kills, payments_kills) != (planned_handler, planned_payments) {
        findings.violations.push(format!(
            "{handler_kills} handler and {payments_kills} payments kills happened, of \
             {planned_handler} and {planned_payments} planned"
        ));
    }
    let in_flight: Vec<String> = trace
        .lives
        .iter()
        .filter(|l| l.crashed)
        .map(|l| {
            format!(
                "#{}: {}+{}",
                l.n,
                l.snapshot.open_claims.len(),
                l.snapshot.running.len()
            )
        })
        .collect();
    let unfinished: Vec<String> = trace
        .payments_kills
        .iter()
        .map(|k| format!("#{}: {}/{}", k.n, k.unfinished, k.recorded))
        .collect();
    let store = if stores.caller.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "crash-test {store}: {}/{} completed, {} committed starts, {} interrupted, {} resumed, \
         {} kills ({handler_kills} handler, {payments_kills} payments), seed {}, {:.1}s{}",
        findings.completed,
        setup.count,
        findings.committed,
        findings.interrupted(),
        findings.resumed,
        handler_kills + payments_kills,
        setup.run_id.trim_start_matches("crash-"),
        trace.elapsed.as_secs_f64(),
        if findings.violations.is_empty() {
            ""
        } else {
            ": FAILED"
        }
    );
    println!(
        "  {} approved; interrupted: {} in flight at a handler kill, {} warned about by the \
         handler; handler kills (unanswered starts + running checks): {}; payments kills \
         (unfinished/recorded): {}; payments resumed {} operations at its restarts; {} \
         completions sent again after a kill still pending",
        findings.approved,
        findings.interrupted_by_kills,
        findings.interrupted_warned,
        in_flight.join(", "),
        unfinished.join(", "),
        trace.payments_resumed,
        findings.redeliveries_pending
    );
    if let Some((n, not_started)) = trace.disk_full.not_started {
        println!(
            "  disk full: payments #{n} did not start {not_started} checks its full store could \
             not record, and exited non-zero; payments #{} started them",
            n + 1
        );
    }
    Ok(findings)
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found; build it first: cargo build -p nexus-examples --bins",
            path.display()
        ))
    }
}

/// A port free now on loopback (kept for the whole run: each restart binds it again).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Resolves on Ctrl-C or SIGTERM, naming it.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
