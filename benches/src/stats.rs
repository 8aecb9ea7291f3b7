//! Small statistics: medians of rounds and percentiles of latencies.

use std::time::{Duration, Instant};

/// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The `p`-th percentile (0..=100) of sorted latencies, by nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latencies of one run, summarised.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadSummary {
    /// Operations completed in the measured window.
    pub ops: u64,
    /// Operations that failed (not counted in `ops`).
    pub errors: u64,
    /// Operations per second over the measured window.
    pub ops_per_sec: f64,
    /// Median latency, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Operations completed in the whole run, warm-up included.
    pub total_ops: u64,
    /// CPU time of the server process per operation over the whole run, in µs (0: not measured).
    pub server_cpu_us: f64,
    /// CPU time of the load generator's process per operation over the whole run, in µs.
    pub client_cpu_us: f64,
}

impl LoadSummary {
    /// Summarises `latencies` (any order) measured over `elapsed`.
    pub fn new(
        mut latencies: Vec<Duration>,
        errors: u64,
        elapsed: Duration,
        total_ops: u64,
    ) -> Self {
        latencies.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Self {
            ops: latencies.len() as u64,
            errors,
            ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_us: us(percentile(&latencies, 50.0)),
            p99_us: us(percentile(&latencies, 99.0)),
            total_ops,
            server_cpu_us: 0.0,
            client_cpu_us: 0.0,
        }
    }

    /// Sets the CPU time per operation of the server and the client processes from their CPU
    /// time over the whole run (divided by `total_ops`).
    pub fn set_cpu(&mut self, server: Duration, client: Duration) {
        let per_op = |d: Duration| d.as_secs_f64() * 1e6 / self.total_ops.max(1) as f64;
        self.server_cpu_us = per_op(server);
        self.client_cpu_us = per_op(client);
    }

    /// The median of each field over several runs (each field on its own).
    pub fn median_of(runs: &[LoadSummary]) -> LoadSummary {
        let field = |f: fn(&LoadSummary) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        LoadSummary {
            ops: field(|r| r.ops as f64) as u64,
            errors: runs.iter().map(|r| r.errors).sum(),
            ops_per_sec: field(|r| r.ops_per_sec),
            p50_us: field(|r| r.p50_us),
            p99_us: field(|r| r.p99_us),
            total_ops: field(|r| r.total_ops as f64) as u64,
            server_cpu_us: field(|r| r.server_cpu_us),
            client_cpu_us: field(|r| r.client_cpu_us),
        }
    }
}

/// What a benchmark times with: the calling thread's CPU time, or wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Time the thread spent running (`CLOCK_THREAD_CPUTIME_ID`), in ns.
    ThreadCpu,
    /// Wall time.
    Wall,
}

/// A reading of a [`Clock`].
#[derive(Clone, Copy, Debug)]
pub enum Reading {
    /// Thread CPU time.
    Cpu(Duration),
    /// A wall-clock instant.
    Wall(Instant),
}

impl Clock {
    /// The thread's CPU time (every platform rustix supports has it).
    pub fn thread_cpu_or_wall() -> Self {
        Self::ThreadCpu
    }

    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::ThreadCpu => "thread CPU time",
            Self::Wall => "wall time",
        }
    }

    /// The current reading.
    pub fn now(self) -> Reading {
        match self {
            Self::ThreadCpu => Reading::Cpu(thread_cpu_time()),
            Self::Wall => Reading::Wall(Instant::now()),
        }
    }

    /// The time elapsed since `start`.
    pub fn since(self, start: Reading) -> Duration {
        match start {
            Reading::Cpu(at) => thread_cpu_time().saturating_sub(at),
            Reading::Wall(at) => at.elapsed(),
        }
    }
}

/// The CPU time of the calling thread, at nanosecond resolution. (`/proc/thread-self/schedstat`
/// would do without a dependency, but the kernel updates it only at scheduler ticks.)
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&ms, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&ms[..1], 99.0), Duration::from_millis(1));
    }

    #[test]
    fn summaries_count_and_rank() {
        let s = LoadSummary::new(
            vec![Duration::from_micros(30), Duration::from_micros(10)],
            1,
            Duration::from_secs(2),
            3,
        );
        assert_eq!(s.ops, 2);
        assert_eq!(s.errors, 1);
        assert_eq!(s.ops_per_sec, 1.0);
        assert_eq!(s.p50_us, 10.0);
        assert_eq!(s.p99_us, 30.0);
        let m = LoadSummary::median_of(&[s, s, LoadSummary::default()]);
        assert_eq!(m.ops_per_sec, 1.0);
        assert_eq!(m.errors, 2);
    }

    #[test]
    fn the_thread_clock_counts_work() {
        let clock = Clock::thread_cpu_or_wall();
        let start = clock.now();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(clock.since(start) > Duration::ZERO);
    }
}
