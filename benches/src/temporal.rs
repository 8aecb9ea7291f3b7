//! Against Temporal: the same sync operation through a Temporal dev server's Nexus HTTP API to a
//! Python worker (`EchoService.echo`), and through nexus-rs's `HandlerServer` (`fraud.v1`
//! `getQuickScore`), driven by the same load generator (raw hyper, one keep-alive connection per
//! worker) in the same run.
//!
//! `benches/scripts/temporal.sh` installs Temporal into a virtualenv, starts the dev server and
//! the worker, and runs this with the endpoint's URL.

use std::io;
use std::time::Duration;

use crate::load::{self, ClientKind, LoadConfig, Target};
use crate::proc::ChildServer;
use crate::stats::{LoadSummary, median};

/// How to run the comparison.
#[derive(Clone, Debug)]
pub struct TemporalOptions {
    /// Base URL of the Temporal server's HTTP API, such as `http://127.0.0.1:27243`.
    pub url: String,
    /// Path of the operation, such as `/nexus/endpoints/{id}/services/EchoService/echo`.
    pub path: String,
    /// Rounds (medians are reported).
    pub rounds: usize,
    /// Warm-up before each measured window.
    pub warmup: Duration,
    /// Each measured window.
    pub duration: Duration,
    /// Concurrency levels.
    pub concurrencies: Vec<usize>,
    /// Worker threads of the nexus-rs server and of the load generator.
    pub threads: usize,
}

/// One concurrency level, every round.
#[derive(Clone, Debug)]
pub struct TemporalRow {
    /// Workers.
    pub concurrency: usize,
    /// Through Temporal, per round.
    pub temporal: Vec<LoadSummary>,
    /// Through nexus-rs, per round.
    pub nexus: Vec<LoadSummary>,
}

/// Runs the comparison.
pub fn run(options: &TemporalOptions) -> io::Result<Vec<TemporalRow>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()?;
    let mut rows: Vec<TemporalRow> = options
        .concurrencies
        .iter()
        .map(|&concurrency| TemporalRow {
            concurrency,
            temporal: Vec::new(),
            nexus: Vec::new(),
        })
        .collect();
    let temporal = Target {
        base: options.url.trim_end_matches('/').to_owned(),
        path: options.path.clone(),
        body: serde_json::to_vec(&crate::bench_input())
            .map_err(io::Error::other)?
            .into(),
        expect: None,
    };
    for round in 0..options.rounds {
        let child = ChildServer::spawn(&[
            "--kind".into(),
            "nexus".into(),
            "--threads".into(),
            options.threads.to_string(),
        ])?;
        let nexus = Target::quick_score(&child.url);
        for row in &mut rows {
            let config = LoadConfig {
                concurrency: row.concurrency,
                warmup: options.warmup,
                duration: options.duration,
                client: ClientKind::Hyper,
            };
            let targets = if round.is_multiple_of(2) {
                [(&temporal, true), (&nexus, false)]
            } else {
                [(&nexus, false), (&temporal, true)]
            };
            for (target, is_temporal) in targets {
                let summary = runtime.block_on(load::run(target, config))?;
                eprintln!(
                    "round {}: {} c={}: {:.0} ops/s, p50 {:.0} us, p99 {:.0} us, {} errors",
                    round + 1,
                    if is_temporal { "temporal" } else { "nexus-rs" },
                    row.concurrency,
                    summary.ops_per_sec,
                    summary.p50_us,
                    summary.p99_us,
                    summary.errors
                );
                if is_temporal {
                    row.temporal.push(summary);
                } else {
                    row.nexus.push(summary);
                }
            }
        }
    }
    Ok(rows)
}

/// The table, in Markdown.
pub fn table(options: &TemporalOptions, rows: &[TemporalRow]) -> String {
    let mut out = format!(
        "Sync operation over HTTP: Temporal dev server -> Python worker (`EchoService.echo`) vs \
         nexus-rs `HandlerServer` (`fraud.v1` `getQuickScore`), same load generator (raw hyper, one \
         keep-alive connection per worker); median of {} rounds, {:.1} s warm-up + {:.1} s measured\n\n\
         | concurrency | path | ops/s | p50 µs | p99 µs | errors | Temporal / nexus-rs throughput |\n\
         |---:|---|---:|---:|---:|---:|---:|\n",
        options.rounds,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64()
    );
    for row in rows {
        let t = LoadSummary::median_of(&row.temporal);
        let n = LoadSummary::median_of(&row.nexus);
        let ratios: Vec<f64> = row
            .temporal
            .iter()
            .zip(&row.nexus)
            .map(|(t, n)| t.ops_per_sec / n.ops_per_sec.max(1e-9))
            .collect();
        out += &format!(
            "| {c} | nexus-rs HandlerServer | {:.0} | {:.0} | {:.0} | {} | - |\n\
             | {c} | Temporal server + Python worker | {:.0} | {:.0} | {:.0} | {} | **{:.3}** ({:.0}x slower) |\n",
            n.ops_per_sec,
            n.p50_us,
            n.p99_us,
            n.errors,
            t.ops_per_sec,
            t.p50_us,
            t.p99_us,
            t.errors,
            median(&ratios),
            1.0 / median(&ratios).max(1e-9),
            c = row.concurrency,
        );
    }
    out
}
