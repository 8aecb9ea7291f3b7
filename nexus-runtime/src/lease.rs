//! The lease loop: the one background loop that keeps a process's durable operations owned.
//!
//! The client's caretaker ([`Client::recover`](crate::client::Client::recover) and, with
//! replicas, lease renewal and claims) and the dispatcher's keeper (lease renewal, takeover of
//! the operations of dead owners, retention) are both a [`LeaseLoop`]:
//!
//! 1. a *start-up* pass (resume or take over what the store holds unfinished), retried with a
//!    [`Backoff`](crate::machinery::Backoff) until it succeeds;
//! 2. then periodic passes, each on its own interval (a missed tick is delayed, not bursted),
//!    until the stop token fires or a pass finds its owner gone.
//!
//! The loop holds nothing of its owner: the passes hold it weakly and answer
//! [`ControlFlow::Break`] once it is dropped, which ends the loop.

use std::fmt::Display;
use std::ops::ControlFlow;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::machinery::Backoff;

/// What a lease loop runs: a start-up pass and periodic passes named by `P`. Either answers
/// [`ControlFlow::Break`] once its owner is gone.
pub(crate) trait Passes<P> {
    /// Why the start-up pass failed.
    type Error: Display;

    /// The start-up pass, retried until it succeeds.
    fn start_up(&mut self) -> impl Future<Output = Result<ControlFlow<()>, Self::Error>> + Send;

    /// One periodic pass.
    fn pass(&mut self, pass: P) -> impl Future<Output = ControlFlow<()>> + Send;
}

/// A lease loop's schedule: its stop token, the backoff of its start-up pass, and its periodic
/// passes (named by `P`).
pub(crate) struct LeaseLoop<P> {
    stop: CancellationToken,
    start_up_retry: Backoff,
    passes: Vec<(P, Duration, bool)>,
}

impl<P: Copy> LeaseLoop<P> {
    /// A loop that ends when `stop` fires, retrying its start-up pass with `start_up_retry`.
    pub fn new(stop: CancellationToken, start_up_retry: Backoff) -> Self {
        Self {
            stop,
            start_up_retry,
            passes: Vec::new(),
        }
    }

    /// Runs `pass` every `period`, the first time one period after start-up.
    #[must_use]
    pub fn every(mut self, pass: P, period: Duration) -> Self {
        self.passes.push((pass, period, false));
        self
    }

    /// Runs `pass` right after start-up, then every `period`.
    #[must_use]
    pub fn now_and_every(mut self, pass: P, period: Duration) -> Self {
        self.passes.push((pass, period, true));
        self
    }

    /// Runs the loop: the start-up pass until it succeeds (each failure logged as `failure`,
    /// then waited out), then the periodic passes. The start-up pass answering `Ok(Break)`, or a
    /// pass answering `Break`, ends the loop (the owner is gone).
    pub async fn run(self, failure: &'static str, mut passes: impl Passes<P>) {
        let mut retrying = self.start_up_retry.retrying();
        loop {
            match passes.start_up().await {
                Ok(ControlFlow::Continue(())) => break,
                Ok(ControlFlow::Break(())) => return,
                Err(e) => {
                    tracing::warn!(error = %e, delay = ?retrying.peek(), "{failure}");
                    if !retrying.sleep(&self.stop).await {
                        return;
                    }
                }
            }
        }
        let mut intervals: Vec<(P, Interval)> = self
            .passes
            .iter()
            .map(|&(p, period, at_once)| (p, interval(period, at_once)))
            .collect();
        loop {
            let due = tokio::select! {
                () = self.stop.cancelled() => return,
                due = next_due(&mut intervals) => due,
            };
            if passes.pass(due).await.is_break() {
                return;
            }
        }
    }
}

/// An interval whose missed ticks are delayed; its first tick at once or one period from now.
fn interval(period: Duration, at_once: bool) -> Interval {
    let start = if at_once {
        Instant::now()
    } else {
        Instant::now() + period
    };
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// The next pass due (the first of the intervals to tick; `Interval::tick` is cancel-safe).
async fn next_due<P: Copy>(intervals: &mut [(P, Interval)]) -> P {
    if intervals.is_empty() {
        return std::future::pending().await;
    }
    let ticks = intervals.iter_mut().map(|(p, interval)| {
        let p = *p;
        Box::pin(interval.tick().map(move |_| p))
    });
    futures::future::select_all(ticks).await.0
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Log = Arc<Mutex<Vec<(&'static str, u128)>>>;

    struct Recorder {
        log: Log,
        started: Instant,
        failures: u32,
        until: Duration,
    }

    impl Passes<&'static str> for Recorder {
        type Error = &'static str;

        async fn start_up(&mut self) -> Result<ControlFlow<()>, &'static str> {
            let at = self.started.elapsed().as_millis();
            self.log.lock().unwrap().push(("start", at));
            if self.failures > 0 {
                self.failures -= 1;
                return Err("store down");
            }
            Ok(ControlFlow::Continue(()))
        }

        async fn pass(&mut self, pass: &'static str) -> ControlFlow<()> {
            let at = self.started.elapsed();
            self.log.lock().unwrap().push((pass, at.as_millis()));
            if at >= self.until {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }

    fn recorder(failures: u32, until: Duration) -> (Recorder, Log) {
        let log = Log::default();
        let recorder = Recorder {
            log: log.clone(),
            started: Instant::now(),
            failures,
            until,
        };
        (recorder, log)
    }

    #[tokio::test(start_paused = true)]
    async fn start_up_is_retried_then_passes_run_on_their_intervals() {
        let (recorder, log) = recorder(2, Duration::from_secs(9));
        LeaseLoop::new(
            CancellationToken::new(),
            Backoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(1)),
        )
        .every("renew", Duration::from_secs(3))
        .now_and_every("purge", Duration::from_secs(5))
        .run("start-up failed", recorder)
        .await;
        assert_eq!(
            *log.lock().unwrap(),
            [
                ("start", 0),
                ("start", 100),
                ("start", 300),
                ("purge", 300),
                ("renew", 3300),
                ("purge", 5300),
                ("renew", 6300),
                ("renew", 9300),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_token_ends_the_loop() {
        let stop = CancellationToken::new();
        let (recorder, log) = recorder(0, Duration::MAX);
        let run = LeaseLoop::new(
            stop.clone(),
            Backoff::new(Duration::ZERO, 1.0, Duration::ZERO),
        )
        .every("tick", Duration::from_secs(1))
        .run("unused", recorder);
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            stop.cancel();
        };
        tokio::join!(run, stopper);
        assert_eq!(
            *log.lock().unwrap(),
            [("start", 0), ("tick", 1000), ("tick", 2000)]
        );
    }
}
