//! `nexus-bench`: the benchmarks of nexus-rs, each a ratio against a baseline measured in the same
//! run. See BENCHMARKS.md for what each measures and the tables.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks of nexus-rs against baselines measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "nexus-bench")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// In-process sync call vs a direct trait call doing the same JSON work.
    Inprocess {
        /// Rounds (the median is reported).
        #[arg(long, default_value_t = 21)]
        rounds: usize,
        /// Calls per variant per round.
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
    },
    /// Repeats one in-process call for a while, to run under a profiler.
    #[command(hide = true)]
    Spin {
        /// The call.
        #[arg(long, value_enum, default_value = "awaited")]
        variant: nexus_benches::inprocess::Variant,
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
    match args.command {
        Command::Inprocess { rounds, calls } => {
            let report = nexus_benches::inprocess::measure(rounds, calls);
            println!("{}", report.table());
            ExitCode::SUCCESS
        }
        Command::Spin {
            variant,
            seconds,
            calls,
        } => {
            let calls = nexus_benches::inprocess::spin(variant, seconds, calls);
            println!("{calls} calls");
            ExitCode::SUCCESS
        }
    }
}
