//! Quick mode: a regression guard for `scripts/test.sh`, in well under a minute, built only on
//! ratios and overheads measured against baselines in the same run (never on absolute times):
//!
//! - in-process: the overhead of an awaited sync call over the direct call must stay under
//!   [`Floors::inprocess_overhead_ns`] (median of interleaved rounds, thread CPU time);
//! - HTTP: nexus-rs's `HandlerServer` must keep at least [`Floors::http_throughput_ratio`] of the
//!   bare axum endpoint's throughput (both in child processes, started once, measured in
//!   alternating short windows; the median of the per-round ratios).
//!
//! Medians of several short rounds keep a noisy 2-core CI machine from failing it by chance, and
//! `nexus-bench quick` measures once more before it fails (a regression shows twice).

use std::io;
use std::time::Duration;

use crate::load::{self, ClientKind, LoadConfig, Target};
use crate::proc::ChildServer;
use crate::stats::median;

/// The floors quick mode enforces.
#[derive(Clone, Copy, Debug)]
pub struct Floors {
    /// The most an awaited in-process sync call may cost over the direct call, in ns.
    pub inprocess_overhead_ns: f64,
    /// The least share of the bare endpoint's throughput the nexus server must keep.
    pub http_throughput_ratio: f64,
}

impl Default for Floors {
    fn default() -> Self {
        Self {
            inprocess_overhead_ns: 5_000.0,
            http_throughput_ratio: 0.5,
        }
    }
}

/// What quick mode measured.
#[derive(Clone, Debug)]
pub struct QuickReport {
    /// The in-process measurement.
    pub inprocess: crate::inprocess::InProcessReport,
    /// Per round: (bare ops/s, nexus ops/s).
    pub http_rounds: Vec<(f64, f64)>,
    /// The median of the per-round throughput ratios.
    pub http_ratio: f64,
    /// The floors checked.
    pub floors: Floors,
}

impl QuickReport {
    /// Whether every measurement is within its floor.
    pub fn passed(&self) -> bool {
        self.inprocess.overhead_ns <= self.floors.inprocess_overhead_ns
            && self.http_ratio >= self.floors.http_throughput_ratio
    }

    /// The results, one line each.
    pub fn summary(&self) -> String {
        let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
        let ip = &self.inprocess;
        let rounds: Vec<String> = self
            .http_rounds
            .iter()
            .map(|(b, n)| format!("{:.2}", n / b.max(1e-9)))
            .collect();
        format!(
            "in-process: awaited sync call {:.0} ns vs direct {:.0} ns: overhead {:.0} ns \
             (limit {:.0} ns, median of {} rounds) .. {}\n\
             HTTP c=16: HandlerServer / bare axum throughput {:.2} (floor {:.2}; rounds: {}) .. {}",
            ip.nexus_ns,
            ip.baseline_ns,
            ip.overhead_ns,
            self.floors.inprocess_overhead_ns,
            ip.rounds,
            verdict(ip.overhead_ns <= self.floors.inprocess_overhead_ns),
            self.http_ratio,
            self.floors.http_throughput_ratio,
            rounds.join(" "),
            verdict(self.http_ratio >= self.floors.http_throughput_ratio),
        )
    }
}

/// Runs quick mode.
pub fn run(floors: Floors) -> io::Result<QuickReport> {
    let inprocess = crate::inprocess::measure(9, 4_000);
    let bare = ChildServer::spawn(&["--kind".into(), "bare".into()])?;
    let nexus = ChildServer::spawn(&["--kind".into(), "nexus".into()])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let config = LoadConfig {
        concurrency: 16,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(800),
        client: ClientKind::Hyper,
    };
    let (bare_target, nexus_target) = (
        Target::quick_score(&bare.url),
        Target::quick_score(&nexus.url),
    );
    let mut http_rounds = Vec::new();
    for round in 0..7_usize {
        let measure = |target: &Target| -> io::Result<f64> {
            let summary = runtime.block_on(load::run(target, config))?;
            if summary.errors > 0 {
                return Err(io::Error::other(format!(
                    "{} requests failed against {}",
                    summary.errors, target.base
                )));
            }
            Ok(summary.ops_per_sec)
        };
        let (b, n) = if round.is_multiple_of(2) {
            let b = measure(&bare_target)?;
            (b, measure(&nexus_target)?)
        } else {
            let n = measure(&nexus_target)?;
            (measure(&bare_target)?, n)
        };
        http_rounds.push((b, n));
    }
    let ratios: Vec<f64> = http_rounds.iter().map(|(b, n)| n / b.max(1e-9)).collect();
    Ok(QuickReport {
        inprocess,
        http_ratio: median(&ratios),
        http_rounds,
        floors,
    })
}
