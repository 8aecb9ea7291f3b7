//! The circuit breaker: stops sending requests to a target that keeps failing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::observe::metrics::BreakerGauge;
use tokio::time::Instant;

/// The reason a blocked operation shows while a breaker holds it back.
pub const BREAKER_OPEN_REASON: &str = "the circuit breaker is open";

/// How a circuit breaker trips and recovers. One breaker guards each target of each endpoint of a
/// client.
///
/// Defaults, as Temporal's: it opens after 5 consecutive retryable failures (retryable handler
/// errors, transport failures, attempt timeouts), stays open 60 s, then lets 1 probe through
/// (half-open); a successful probe closes it, a failed one opens it again. Any answer that is not a
/// retryable failure (a result, an OperationError, a non-retryable HandlerError) counts as a
/// success: the target is up.
///
/// An operation never times out for want of an attempt while the breaker is open: one whose
/// deadline comes first is let through as a probe when the time it has left falls to its attempt
/// timeout (or to half of what it had left when it was held back, if that is less). So once the
/// target is back, every operation held back makes one more attempt before its deadline.
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::machinery::BreakerConfig;
///
/// let config = BreakerConfig::default()
///     .failure_threshold(3)
///     .open_duration(Duration::from_secs(10));
/// assert_eq!(config.half_open_probes, 1);
/// assert!(BreakerConfig::disabled().failure_threshold == 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive retryable failures that open the breaker (default 5; 0 disables it).
    pub failure_threshold: u32,
    /// How long it stays open before letting probes through (default 60 s).
    pub open_duration: Duration,
    /// Requests let through while half-open; that many successes close it (default 1).
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_duration: Duration::from_secs(60),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// Temporal's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A breaker that never opens.
    pub fn disabled() -> Self {
        Self::default().failure_threshold(0)
    }

    /// Sets how many consecutive retryable failures open the breaker (0 disables it).
    #[must_use]
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// Sets how long the breaker stays open.
    #[must_use]
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.open_duration = duration;
        self
    }

    /// Sets how many probes the half-open breaker lets through (at least 1).
    #[must_use]
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes.max(1);
        self
    }
}

/// The state of a circuit breaker, as [`Client::breaker_state`](crate::Client::breaker_state)
/// reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through.
    Closed {
        /// Retryable failures in a row so far.
        consecutive_failures: u32,
    },
    /// Requests wait; the breaker turns half-open at `until`.
    Open {
        /// When probes may go through.
        until: Instant,
    },
    /// A limited number of probe requests may go through.
    HalfOpen {
        /// Probes sent and not yet answered.
        probes_in_flight: u32,
    },
}

impl BreakerState {
    /// Whether requests wait (open, or half-open with every probe slot taken).
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open { .. })
    }
}

#[derive(Debug)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Bumped on every change of phase, so answers to requests admitted in an earlier phase are
    /// ignored.
    generation: u64,
}

/// One circuit breaker. `changed` is notified whenever it may admit more requests.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
    changed: Arc<Notify>,
    gauge: BreakerGauge,
}

/// Why a breaker did not admit a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Open until then.
    OpenUntil(Instant),
    /// Half-open, every probe slot in use: wait for a probe's answer.
    ProbesBusy,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig, changed: Arc<Notify>) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                phase: Phase::Closed { failures: 0 },
                generation: 0,
            }),
            changed,
            gauge: BreakerGauge::default(),
        }
    }

    /// Shows the breaker's state in `gauge`.
    pub fn metered(mut self, gauge: BreakerGauge) -> Self {
        self.gauge = gauge;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state (an open breaker whose time is up reads as half-open).
    pub fn state(&self) -> BreakerState {
        let state = self.lock();
        match state.phase {
            Phase::Closed { failures } => BreakerState::Closed {
                consecutive_failures: failures,
            },
            Phase::Open { until } if Instant::now() < until => BreakerState::Open { until },
            Phase::Open { .. } => BreakerState::HalfOpen {
                probes_in_flight: 0,
            },
            Phase::HalfOpen { in_flight, .. } => BreakerState::HalfOpen {
                probes_in_flight: in_flight,
            },
        }
    }

    /// Admits a request, or says why not.
    pub fn try_acquire(self: &Arc<Self>) -> Result<BreakerPermit, Refusal> {
        let mut state = self.lock();
        let probe = match &mut state.phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } => {
                if Instant::now() < *until {
                    return Err(Refusal::OpenUntil(*until));
                }
                state.phase = Phase::HalfOpen {
                    in_flight: 1,
                    successes: 0,
                };
                state.generation += 1;
                self.gauge.set(1);
                tracing::debug!("circuit breaker half-open: admitting a probe");
                true
            }
            Phase::HalfOpen { in_flight, .. } => {
                if *in_flight >= self.config.half_open_probes.max(1) {
                    return Err(Refusal::ProbesBusy);
                }
                *in_flight += 1;
                true
            }
        };
        Ok(BreakerPermit {
            breaker: self.clone(),
            generation: state.generation,
            probe,
            settled: false,
        })
    }

    /// Admits the last attempt of an operation whose deadline comes before this breaker would
    /// let probes through: an open breaker turns half-open at once, with this request as its
    /// probe (its answer closes the breaker or opens it for another period). Refused only while
    /// the probes of a half-open breaker are in flight: their answers decide.
    pub fn try_acquire_last_chance(self: &Arc<Self>) -> Result<BreakerPermit, Refusal> {
        {
            let mut state = self.lock();
            if matches!(state.phase, Phase::Open { .. }) {
                state.phase = Phase::HalfOpen {
                    in_flight: 0,
                    successes: 0,
                };
                state.generation += 1;
                tracing::debug!("circuit breaker half-open early: an operation's deadline is near");
            }
        }
        self.try_acquire()
    }

    fn settle(&self, generation: u64, probe: bool, outcome: Option<bool>) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        let threshold = self.config.failure_threshold;
        let next = match (&mut state.phase, outcome) {
            (Phase::Closed { failures }, Some(true)) => {
                *failures = 0;
                None
            }
            (Phase::Closed { failures }, Some(false)) => {
                *failures = failures.saturating_add(1);
                (threshold > 0 && *failures >= threshold).then(|| Phase::Open {
                    until: Instant::now() + self.config.open_duration,
                })
            }
            (Phase::HalfOpen { in_flight, .. }, None) if probe => {
                *in_flight = in_flight.saturating_sub(1);
                self.changed.notify_waiters();
                None
            }
            (
                Phase::HalfOpen {
                    in_flight,
                    successes,
                },
                Some(true),
            ) if probe => {
                *in_flight = in_flight.saturating_sub(1);
                *successes += 1;
                (*successes >= self.config.half_open_probes.max(1))
                    .then_some(Phase::Closed { failures: 0 })
            }
            (Phase::HalfOpen { .. }, Some(false)) if probe => Some(Phase::Open {
                until: Instant::now() + self.config.open_duration,
            }),
            _ => None,
        };
        if let Some(phase) = next {
            match &phase {
                Phase::Open { .. } => {
                    self.gauge.set(2);
                    tracing::warn!("circuit breaker opened");
                }
                Phase::Closed { .. } => {
                    self.gauge.set(0);
                    tracing::info!("circuit breaker closed");
                }
                Phase::HalfOpen { .. } => self.gauge.set(1),
            }
            state.phase = phase;
            state.generation += 1;
            self.changed.notify_waiters();
        }
    }
}

/// A request admitted by a breaker. Report its outcome with [`success`](Self::success) or
/// [`failure`](Self::failure); dropping it unreported (the request was abandoned) frees its probe
/// slot without changing the breaker.
#[derive(Debug)]
pub(crate) struct BreakerPermit {
    breaker: Arc<CircuitBreaker>,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl BreakerPermit {
    /// The target answered (anything but a retryable failure).
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.settle(self.generation, self.probe, Some(true));
    }

    /// A retryable failure.
    pub fn failure(mut self) {
        self.settled = true;
        self.breaker
            .settle(self.generation, self.probe, Some(false));
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.settle(self.generation, self.probe, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Arc<CircuitBreaker> {
        Arc::new(CircuitBreaker::new(
            BreakerConfig::default(),
            Arc::default(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_the_fifth_failure_and_probes_once() {
        let b = breaker();
        for n in 1..=4 {
            b.try_acquire().expect("admitted").failure();
            assert_eq!(
                b.state(),
                BreakerState::Closed {
                    consecutive_failures: n
                }
            );
        }
        b.try_acquire().expect("admitted").failure();
        let until = Instant::now() + Duration::from_secs(60);
        assert_eq!(b.state(), BreakerState::Open { until });
        assert_eq!(
            b.try_acquire().expect_err("refused"),
            Refusal::OpenUntil(until)
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let probe = b.try_acquire().expect("admitted");
        assert_eq!(b.try_acquire().expect_err("refused"), Refusal::ProbesBusy);
        drop(probe);
        let probe = b.try_acquire().expect("admitted");
        probe.failure();
        assert!(b.state().is_open());
        tokio::time::advance(Duration::from_secs(60)).await;
        b.try_acquire().expect("admitted").success();
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_and_stale_answers_are_ignored() {
        let b = breaker();
        let stale = b.try_acquire().expect("admitted");
        for _ in 0..4 {
            b.try_acquire().expect("admitted").failure();
        }
        b.try_acquire().expect("admitted").success();
        for _ in 0..4 {
            b.try_acquire().expect("admitted").failure();
        }
        assert!(!b.state().is_open());
        b.try_acquire().expect("admitted").failure();
        assert!(b.state().is_open());
        // An answer to a request admitted before the breaker opened changes nothing.
        stale.success();
        assert!(b.state().is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn threshold_zero_never_opens() {
        let b = Arc::new(CircuitBreaker::new(
            BreakerConfig::disabled(),
            Arc::default(),
        ));
        for _ in 0..100 {
            b.try_acquire().expect("admitted").failure();
        }
        assert!(!b.state().is_open());
    }
}
