//! The HTTP sync operation on loopback: nexus-rs's `HandlerServer` serving `fraud.v1`
//! `getQuickScore` against a bare axum endpoint doing the same work, both driven by the same
//! load generator (raw hyper, one keep-alive connection per worker) in the same run; and the
//! nexus-rs client path (generated stub + `HttpTransport`) against the raw client, on the nexus
//! server.
//!
//! Each server runs in a child process of its own; the load generator runs here. A round runs
//! every server and client at every concurrency; rounds alternate which server goes first, and
//! the report gives the median over rounds, with each ratio taken within a round.

use std::io;
use std::time::Duration;

use crate::load::{self, ClientKind, LoadConfig, Target};
use crate::proc::{ChildServer, own_cpu_time};
use crate::servers::ServerKind;
use crate::stats::{LoadSummary, median};

/// How to run the comparison.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Rounds (medians are reported).
    pub rounds: usize,
    /// Warm-up before each measured window.
    pub warmup: Duration,
    /// Each measured window.
    pub duration: Duration,
    /// Concurrency levels (workers, each with one request in flight).
    pub concurrencies: Vec<usize>,
    /// Worker threads of each server process.
    pub server_threads: usize,
    /// Worker threads of the load generator.
    pub load_threads: usize,
    /// Also measure the client path (nexus stub vs raw client, on the nexus server).
    pub clients: bool,
}

/// One measurement: a server, a client, a concurrency, every round.
#[derive(Clone, Debug)]
pub struct Series {
    /// The server driven.
    pub server: ServerKind,
    /// The client driving it.
    pub client: ClientKind,
    /// Workers.
    pub concurrency: usize,
    /// One summary per round.
    pub rounds: Vec<LoadSummary>,
}

impl Series {
    /// The median over rounds.
    pub fn median(&self) -> LoadSummary {
        LoadSummary::median_of(&self.rounds)
    }
}

/// Everything measured.
#[derive(Clone, Debug)]
pub struct HttpReport {
    /// The options used.
    pub options: HttpOptions,
    /// Every series.
    pub series: Vec<Series>,
}

/// Runs the comparison.
pub fn run(options: &HttpOptions) -> io::Result<HttpReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.load_threads)
        .enable_all()
        .build()?;
    let mut series: Vec<Series> = Vec::new();
    let mut record = |server, client, concurrency, summary| match series
        .iter_mut()
        .find(|s| s.server == server && s.client == client && s.concurrency == concurrency)
    {
        Some(s) => s.rounds.push(summary),
        None => series.push(Series {
            server,
            client,
            concurrency,
            rounds: vec![summary],
        }),
    };
    for round in 0..options.rounds {
        let order = if round.is_multiple_of(2) {
            [ServerKind::Bare, ServerKind::Nexus]
        } else {
            [ServerKind::Nexus, ServerKind::Bare]
        };
        for server in order {
            let child = ChildServer::spawn(&[
                "--kind".into(),
                format!("{server:?}").to_lowercase(),
                "--threads".into(),
                options.server_threads.to_string(),
            ])?;
            let target = Target::quick_score(&child.url);
            let mut clients = vec![ClientKind::Hyper];
            if options.clients && server == ServerKind::Nexus {
                clients.extend([ClientKind::Nexus, ClientKind::Reqwest]);
            }
            for &concurrency in &options.concurrencies {
                for &client in &clients {
                    let config = LoadConfig {
                        concurrency,
                        warmup: options.warmup,
                        duration: options.duration,
                        client,
                    };
                    let (server_cpu, client_cpu) = (child.cpu_time()?, own_cpu_time()?);
                    let mut summary = runtime.block_on(load::run(&target, config))?;
                    summary.set_cpu(
                        child.cpu_time()?.saturating_sub(server_cpu),
                        own_cpu_time()?.saturating_sub(client_cpu),
                    );
                    eprintln!(
                        "round {}: {} <- {}, c={concurrency}: {:.0} ops/s, p50 {:.0} us, p99 {:.0} us, \
                         CPU/op server {:.1} us client {:.1} us, {} errors",
                        round + 1,
                        server.name(),
                        client.name(),
                        summary.ops_per_sec,
                        summary.p50_us,
                        summary.p99_us,
                        summary.server_cpu_us,
                        summary.client_cpu_us,
                        summary.errors
                    );
                    record(server, client, concurrency, summary);
                }
            }
            drop(child);
        }
    }
    Ok(HttpReport {
        options: options.clone(),
        series,
    })
}

/// The ratios of one comparison at one concurrency, each taken within a round.
#[derive(Clone, Copy, Debug)]
pub struct Comparison {
    /// Median over rounds of (nexus ops/s / baseline ops/s).
    pub throughput_ratio: f64,
    /// Median over rounds of (nexus p50 - baseline p50), in µs.
    pub p50_overhead_us: f64,
    /// Median over rounds of (nexus p99 - baseline p99), in µs.
    pub p99_overhead_us: f64,
}

impl HttpReport {
    /// The series of `server` driven by `client` at `concurrency`.
    pub fn find(
        &self,
        server: ServerKind,
        client: ClientKind,
        concurrency: usize,
    ) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.server == server && s.client == client && s.concurrency == concurrency)
    }

    /// `subject` against `baseline`, round by round.
    pub fn compare(baseline: &Series, subject: &Series) -> Comparison {
        let pairs = baseline.rounds.iter().zip(&subject.rounds);
        let ratios: Vec<f64> = pairs
            .clone()
            .map(|(b, s)| s.ops_per_sec / b.ops_per_sec.max(1e-9))
            .collect();
        let p50: Vec<f64> = pairs.clone().map(|(b, s)| s.p50_us - b.p50_us).collect();
        let p99: Vec<f64> = pairs.map(|(b, s)| s.p99_us - b.p99_us).collect();
        Comparison {
            throughput_ratio: median(&ratios),
            p50_overhead_us: median(&p50),
            p99_overhead_us: median(&p99),
        }
    }

    /// The server comparison at `concurrency` (raw client on both), if measured.
    pub fn server_comparison(&self, concurrency: usize) -> Option<Comparison> {
        let bare = self.find(ServerKind::Bare, ClientKind::Hyper, concurrency)?;
        let nexus = self.find(ServerKind::Nexus, ClientKind::Hyper, concurrency)?;
        Some(Self::compare(bare, nexus))
    }

    /// The tables, in Markdown.
    pub fn tables(&self) -> String {
        let o = &self.options;
        let mut out = format!(
            "HTTP sync operation on loopback (median of {} rounds; {:.1} s warm-up + {:.1} s measured \
             per cell; server {} threads, load generator {} threads, separate processes)\n\n\
             | concurrency | server (raw hyper client, 1 keep-alive connection per worker) | ops/s | p50 µs | p99 µs | server CPU µs/op | throughput vs bare | p50 overhead | p99 overhead |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
            o.rounds,
            o.warmup.as_secs_f64(),
            o.duration.as_secs_f64(),
            o.server_threads,
            o.load_threads,
        );
        for &c in &o.concurrencies {
            let (Some(bare), Some(nexus)) = (
                self.find(ServerKind::Bare, ClientKind::Hyper, c),
                self.find(ServerKind::Nexus, ClientKind::Hyper, c),
            ) else {
                continue;
            };
            let cmp = Self::compare(bare, nexus);
            let (b, n) = (bare.median(), nexus.median());
            out += &format!(
                "| {c} | {} | {:.0} | {:.0} | {:.0} | {:.1} | - | - | - |\n",
                ServerKind::Bare.name(),
                b.ops_per_sec,
                b.p50_us,
                b.p99_us,
                b.server_cpu_us
            );
            out += &format!(
                "| {c} | {} | {:.0} | {:.0} | {:.0} | {:.1} | **{:.2}** | **{:+.0} µs** | {:+.0} µs |\n",
                ServerKind::Nexus.name(),
                n.ops_per_sec,
                n.p50_us,
                n.p99_us,
                n.server_cpu_us,
                cmp.throughput_ratio,
                cmp.p50_overhead_us,
                cmp.p99_overhead_us
            );
        }
        if o.clients {
            out += "\nClient path, on the nexus-rs server:\n\n\
                    | concurrency | client | ops/s | p50 µs | p99 µs | client CPU µs/op | throughput vs raw hyper | p50 overhead |\n\
                    |---:|---|---:|---:|---:|---:|---:|---:|\n";
            for &c in &o.concurrencies {
                let Some(raw) = self.find(ServerKind::Nexus, ClientKind::Hyper, c) else {
                    continue;
                };
                let r = raw.median();
                out += &format!(
                    "| {c} | {} | {:.0} | {:.0} | {:.0} | {:.1} | - | - |\n",
                    ClientKind::Hyper.name(),
                    r.ops_per_sec,
                    r.p50_us,
                    r.p99_us,
                    r.client_cpu_us
                );
                for client in [ClientKind::Reqwest, ClientKind::Nexus] {
                    if let Some(s) = self.find(ServerKind::Nexus, client, c) {
                        let cmp = Self::compare(raw, s);
                        let m = s.median();
                        out += &format!(
                            "| {c} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:+.0} µs |\n",
                            client.name(),
                            m.ops_per_sec,
                            m.p50_us,
                            m.p99_us,
                            m.client_cpu_us,
                            cmp.throughput_ratio,
                            cmp.p50_overhead_us
                        );
                    }
                }
            }
        }
        let errors: u64 = self
            .series
            .iter()
            .flat_map(|s| &s.rounds)
            .map(|r| r.errors)
            .sum();
        if errors > 0 {
            out += &format!("\n**{errors} requests failed** (see the log above).\n");
        }
        out
    }
}
