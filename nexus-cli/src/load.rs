//! `nexus load`: N calls of one operation, C at a time, with a progress bar and a latency
//! summary.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nexus_runtime::CallOptions;

use crate::call::{CallbackArgs, ToolClient};
use crate::connect::{ConnectArgs, read_input, resolve_endpoint};
use crate::fail::{Failure, OPERATION_FAILED};

/// `nexus load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The handler: a base URL or an endpoint of the registry.
    pub endpoint: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The input of every call: JSON, `@FILE`, or `-` for stdin.
    pub input: Option<String>,
    /// How many calls.
    #[arg(long, short = 'n', default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub count: u64,
    /// How many calls at once.
    #[arg(long, short = 'c', default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub concurrency: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub callback: CallbackArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The `q` quantile of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs `nexus load`.
pub async fn run(args: LoadArgs, registry: &Path) -> Result<(), Failure> {
    let url = resolve_endpoint(&args.endpoint, registry)?;
    let input = read_input(args.input.as_deref())?;
    let tool = ToolClient::new(&url, &args.connect, &args.callback, 1).await?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(args.count), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut headers = CallOptions::new();
    for (name, value) in &args.connect.headers {
        headers = headers.header(name, value.clone());
    }
    let (service, operation) = (args.service.as_str(), args.operation.as_str());
    let started = Instant::now();
    let outcomes: Vec<Result<Duration, String>> = futures::stream::iter(0..args.count)
        .map(|_| {
            let (tool, input, options, bar) = (&tool, input.clone(), headers.clone(), &bar);
            async move {
                let begin = Instant::now();
                let outcome = match tool.schedule(service, operation, input, options) {
                    Ok(handle) => match handle.result().await {
                        Ok(_) => Ok(begin.elapsed()),
                        Err(e) => Err(Failure::from(e).message),
                    },
                    Err(e) => Err(e.message),
                };
                bar.inc(1);
                outcome
            }
        })
        .buffer_unordered(usize::try_from(args.concurrency).unwrap_or(usize::MAX))
        .collect()
        .await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let mut latencies: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    latencies.sort_unstable();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for error in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        *errors.entry(error.clone()).or_default() += 1;
    }
    let ok = latencies.len();
    let throughput = ok as f64 / elapsed.as_secs_f64().max(1e-9);
    let summary = serde_json::json!({
        "calls": args.count,
        "succeeded": ok,
        "failed": args.count as usize - ok,
        "concurrency": args.concurrency,
        "elapsedMs": ms(elapsed),
        "throughputPerSec": (throughput * 10.0).round() / 10.0,
        "latencyMs": {
            "p50": ms(quantile(&latencies, 0.50)),
            "p90": ms(quantile(&latencies, 0.90)),
            "p99": ms(quantile(&latencies, 0.99)),
            "max": ms(latencies.last().copied().unwrap_or_default()),
        },
        "errors": errors,
    });
    if args.json {
        anstream::println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        let latency = &summary["latencyMs"];
        anstream::println!(
            "{ok}/{} calls succeeded in {:.2} s ({:.1} calls/s, concurrency {})",
            args.count,
            elapsed.as_secs_f64(),
            throughput,
            args.concurrency
        );
        anstream::println!(
            "latency ms: p50 {}  p90 {}  p99 {}  max {}",
            latency["p50"],
            latency["p90"],
            latency["p99"],
            latency["max"]
        );
        for (error, n) in &errors {
            anstream::println!("{n} × {error}");
        }
    }
    if ok < args.count as usize {
        return Err(Failure::quiet(OPERATION_FAILED));
    }
    Ok(())
}
