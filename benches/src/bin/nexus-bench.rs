//! `nexus-bench`: the benchmarks of nexus-rs, each a ratio against a baseline measured in the same
//! run. See BENCHMARKS.md for what each measures, the tables, and the commands.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nexus_benches::load::{self, ClientKind, LoadConfig, Target};
use nexus_benches::servers::ServerKind;
use nexus_benches::{http, inprocess, lease_renewal, proc, quick, round_trip, servers, temporal};

/// Benchmarks of nexus-rs against baselines measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "nexus-bench")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The regression guard of scripts/test.sh: fails when a ratio crosses its floor.
    Quick {
        /// The most an awaited in-process call may cost over the direct call, in ns.
        #[arg(long, default_value_t = 5_000.0)]
        max_inprocess_overhead_ns: f64,
        /// The least share of the bare endpoint's HTTP throughput the nexus server must keep.
        #[arg(long, default_value_t = 0.5)]
        min_http_ratio: f64,
    },
    /// In-process sync call vs a direct trait call doing the same JSON work.
    Inprocess {
        /// Rounds (the median is reported).
        #[arg(long, default_value_t = 21)]
        rounds: usize,
        /// Calls per variant per round.
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
    },
    /// HTTP sync operation: HandlerServer vs a bare axum endpoint, and the client path.
    Http {
        /// Rounds (medians are reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Warm-up seconds before each measured window.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Seconds of each measured window.
        #[arg(long, default_value_t = 4.0)]
        duration: f64,
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
        concurrency: Vec<usize>,
        /// Worker threads of each server process.
        #[arg(long, default_value_t = 2)]
        server_threads: usize,
        /// Worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        load_threads: usize,
        /// Skip the client-path rows.
        #[arg(long)]
        no_clients: bool,
    },
    /// Async round trip over HTTP (start, 201, completion by callback) and memory per pending
    /// operation.
    Async {
        /// Operations in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Rounds of the throughput measurement.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Warm-up seconds.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Measured seconds.
        #[arg(long, default_value_t = 4.0)]
        duration: f64,
        /// Pending operations for the memory measurement (0: skip).
        #[arg(long, default_value_t = 100_000)]
        pending: usize,
        /// Where operation state lives: `memory` (no store) or `sqlite:DIR` (an SQLite store for
        /// each side in data directory DIR, made afresh for each measurement, commits flushed to
        /// disk); `sqlite-crash:DIR` the same with commits that survive a process crash but not a
        /// power loss (`SqliteDurability::ProcessCrash`: no `fsync` per commit).
        #[arg(long, default_value = "memory")]
        store: round_trip::Store,
        /// Worker threads of the handler process and of the caller.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Sync operation through a Temporal dev server (Nexus HTTP API -> Python worker) vs
    /// nexus-rs; `benches/scripts/temporal.sh` sets Temporal up and runs this.
    Temporal {
        /// Base URL of the Temporal server's HTTP API.
        #[arg(long)]
        url: String,
        /// Path of the operation: /nexus/endpoints/{id}/services/EchoService/echo.
        #[arg(long)]
        path: String,
        /// Rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Warm-up seconds.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Measured seconds.
        #[arg(long, default_value_t = 4.0)]
        duration: f64,
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
        concurrency: Vec<usize>,
        /// Worker threads of the nexus-rs server and of the load generator.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// A handler's lease renewal on its SQLite store, with no running operation and with many.
    LeaseRenewal {
        /// The store's directory (made afresh).
        #[arg(long, default_value = "target/bench-leases")]
        dir: std::path::PathBuf,
        /// Running operations leased to the renewing owner.
        #[arg(long, default_value_t = 100_000)]
        operations: usize,
        /// Renewals measured at each size.
        #[arg(long, default_value_t = 5)]
        renewals: usize,
    },
    /// Drives any HTTP endpoint with the load generator (such as a Temporal Nexus endpoint).
    Load {
        /// Base URL, such as http://127.0.0.1:7243.
        #[arg(long)]
        url: String,
        /// Request path (default: fraud.v1 getQuickScore).
        #[arg(long, default_value = servers::QUICK_SCORE_PATH)]
        path: String,
        /// JSON body (default: the getQuickScore input); any 200 answer counts when given.
        #[arg(long)]
        body: Option<String>,
        /// Workers.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Warm-up seconds.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Measured seconds.
        #[arg(long, default_value_t = 4.0)]
        duration: f64,
        /// The client.
        #[arg(long, value_enum, default_value = "hyper")]
        client: ClientKind,
        /// Worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Serves one of the benchmarked servers (run by the benchmarks as a child process).
    Serve {
        /// Which server.
        #[arg(long, value_enum)]
        kind: ServerKind,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// How long the async `checkTransaction` takes, in milliseconds.
        #[arg(long, default_value_t = 0)]
        check_delay_ms: u64,
        /// Where operation state lives: `memory` (no store), `sqlite:DIR` or `sqlite-crash:DIR`
        /// (the handler's SQLite store in DIR/handler.sqlite3).
        #[arg(long, default_value = "memory")]
        store: round_trip::Store,
    },
    /// Starts async operations on a handler and holds them pending (to profile its memory).
    #[command(hide = true)]
    AsyncStart {
        /// The handler's base URL.
        #[arg(long)]
        url: String,
        /// Operations.
        #[arg(long, default_value_t = 5000)]
        count: usize,
        /// Tasks starting them.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to hold them.
        #[arg(long, default_value_t = 1.0)]
        hold: f64,
    },
    /// Repeats one in-process call for a while, to run under a profiler.
    #[command(hide = true)]
    Spin {
        /// The call.
        #[arg(long, value_enum, default_value = "awaited")]
        variant: inprocess::Variant,
        /// For how long.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        /// Exactly this many calls instead.
        #[arg(long)]
        calls: Option<u64>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nexus-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn run(command: Command) -> std::io::Result<ExitCode> {
    match command {
        Command::Quick {
            max_inprocess_overhead_ns,
            min_http_ratio,
        } => {
            let floors = quick::Floors {
                inprocess_overhead_ns: max_inprocess_overhead_ns,
                http_throughput_ratio: min_http_ratio,
            };
            let report = quick::run(floors)?;
            println!("{}", report.summary());
            if !report.passed() {
                // A regression shows again; a burst of load on a shared machine rarely does.
                println!("a floor was crossed: measuring once more before failing");
                let again = quick::run(floors)?;
                println!("{}", again.summary());
                if !again.passed() {
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::Inprocess { rounds, calls } => {
            let report = inprocess::measure(rounds, calls);
            println!("{}", report.table());
        }
        Command::Http {
            rounds,
            warmup,
            duration,
            concurrency,
            server_threads,
            load_threads,
            no_clients,
        } => {
            let report = http::run(&http::HttpOptions {
                rounds,
                warmup: secs(warmup),
                duration: secs(duration),
                concurrencies: concurrency,
                server_threads,
                load_threads,
                clients: !no_clients,
            })?;
            println!("{}", report.tables());
        }
        Command::Async {
            concurrency,
            rounds,
            warmup,
            duration,
            pending,
            store,
            threads,
        } => {
            let report = round_trip::run(&round_trip::RoundTripOptions {
                concurrency,
                warmup: secs(warmup),
                duration: secs(duration),
                rounds,
                pending,
                store,
                threads,
            })?;
            println!("{}", report.tables());
        }
        Command::Temporal {
            url,
            path,
            rounds,
            warmup,
            duration,
            concurrency,
            threads,
        } => {
            let options = temporal::TemporalOptions {
                url,
                path,
                rounds,
                warmup: secs(warmup),
                duration: secs(duration),
                concurrencies: concurrency,
                threads,
            };
            let rows = temporal::run(&options)?;
            println!("{}", temporal::table(&options, &rows));
        }
        Command::Load {
            url,
            path,
            body,
            concurrency,
            warmup,
            duration,
            client,
            threads,
        } => {
            let mut target = Target::quick_score(&url);
            target.path = path;
            if let Some(body) = body {
                target.body = body.into_bytes().into();
                target.expect = None;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?;
            let summary = runtime.block_on(load::run(
                &target,
                LoadConfig {
                    concurrency,
                    warmup: secs(warmup),
                    duration: secs(duration),
                    client,
                },
            ))?;
            println!(
                "{} c={concurrency}: {:.0} ops/s, p50 {:.0} us, p99 {:.0} us, {} errors",
                target.base, summary.ops_per_sec, summary.p50_us, summary.p99_us, summary.errors
            );
        }
        Command::Serve {
            kind,
            listen,
            threads,
            check_delay_ms,
            store,
        } => {
            proc::exit_when_stdin_closes();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                println!("listening on http://{}", listener.local_addr()?);
                let store = store.handler_store().await?;
                servers::serve(kind, listener, Duration::from_millis(check_delay_ms), store).await
            })?;
        }
        Command::AsyncStart {
            url,
            count,
            concurrency,
            hold,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(round_trip::hold_pending(
                &url,
                count,
                concurrency,
                secs(hold),
            ))?;
        }
        Command::LeaseRenewal {
            dir,
            operations,
            renewals,
        } => {
            let options = lease_renewal::LeaseRenewalOptions {
                dir,
                operations,
                renewals,
            };
            println!("{}", lease_renewal::run(&options)?);
        }
        Command::Spin {
            variant,
            seconds,
            calls,
        } => {
            let calls = inprocess::spin(variant, seconds, calls);
            println!("{calls} calls");
        }
    }
    Ok(ExitCode::SUCCESS)
}
