//! Load balancing: round robin over an endpoint's targets, skipping those whose breaker is open.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::breaker::{BreakerConfig, BreakerPermit, BreakerState, CircuitBreaker, Refusal};
use crate::observe::metrics::BreakerGauge;
use crate::transport::Transport;

/// One target of an endpoint: a transport and its breaker.
struct Target {
    transport: Arc<dyn Transport>,
    breaker: Arc<CircuitBreaker>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

/// The targets of one endpoint.
#[derive(Debug)]
pub(crate) struct Targets {
    targets: Vec<Target>,
    next: Mutex<usize>,
    changed: Arc<Notify>,
}

/// A request the breakers let through, to target `index`.
pub(crate) struct Admitted {
    pub index: usize,
    pub transport: Arc<dyn Transport>,
    pub permit: BreakerPermit,
}

/// The answer of [`Targets::admit`].
pub(crate) enum Admission {
    /// Go ahead.
    Admitted(Admitted),
    /// Every eligible breaker holds requests back; try again at `until` (an open breaker turns
    /// half-open) or when [`Targets::changed`] is notified (a probe was answered).
    Wait { until: Option<Instant> },
}

impl Targets {
    /// The targets of endpoint `endpoint` (named in the breakers' metrics).
    pub fn new(
        transports: Vec<Arc<dyn Transport>>,
        config: &BreakerConfig,
        endpoint: &str,
    ) -> Self {
        let changed = Arc::new(Notify::new());
        let targets = transports
            .into_iter()
            .enumerate()
            .map(|(index, transport)| Target {
                transport,
                breaker: Arc::new(
                    CircuitBreaker::new(config.clone(), changed.clone())
                        .metered(BreakerGauge::new(endpoint, index)),
                ),
            })
            .collect();
        Self {
            targets,
            next: Mutex::new(0),
            changed,
        }
    }

    /// Notified whenever a breaker of these targets may admit more requests.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Whether any target needs completions to come back over the network.
    pub fn any_needs_callback_url(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.transport.needs_callback_url())
    }

    /// Whether target `index` needs completions to come back over the network.
    pub fn needs_callback_url(&self, index: usize) -> bool {
        self.targets
            .get(index)
            .is_some_and(|t| t.transport.needs_callback_url())
    }

    /// The breaker state of every target, in order.
    pub fn breaker_states(&self) -> Vec<BreakerState> {
        self.targets.iter().map(|t| t.breaker.state()).collect()
    }

    /// Picks the next target in round-robin order whose breaker admits a request.
    pub fn admit(&self) -> Admission {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let count = self.targets.len();
        let mut until: Option<Instant> = None;
        for step in 0..count {
            let index = (*next + step) % count;
            match self.try_target(index) {
                Ok(admitted) => {
                    *next = (index + 1) % count;
                    return Admission::Admitted(admitted);
                }
                Err(refusal) => until = earliest(until, refusal),
            }
        }
        Admission::Wait { until }
    }

    /// Like [`admit`](Self::admit), for the last attempt an operation can make before its
    /// deadline: open breakers turn half-open with it as their probe.
    pub fn admit_last_chance(&self) -> Admission {
        let count = self.targets.len();
        let first = *self.next.lock().unwrap_or_else(|e| e.into_inner());
        let mut until: Option<Instant> = None;
        for step in 0..count {
            let index = (first + step) % count;
            let target = &self.targets[index];
            match target.breaker.try_acquire_last_chance() {
                Ok(permit) => {
                    return Admission::Admitted(Admitted {
                        index,
                        transport: target.transport.clone(),
                        permit,
                    });
                }
                Err(refusal) => until = earliest(until, refusal),
            }
        }
        Admission::Wait { until }
    }

    /// Admits a request to target `index` only (cancel requests go where the operation started).
    pub fn admit_to(&self, index: usize) -> Admission {
        match self.try_target(index) {
            Ok(admitted) => Admission::Admitted(admitted),
            Err(refusal) => Admission::Wait {
                until: earliest(None, refusal),
            },
        }
    }

    fn try_target(&self, index: usize) -> Result<Admitted, Refusal> {
        let target = &self.targets[index % self.targets.len()];
        let permit = target.breaker.try_acquire()?;
        Ok(Admitted {
            index: index % self.targets.len(),
            transport: target.transport.clone(),
            permit,
        })
    }
}

fn earliest(current: Option<Instant>, refusal: Refusal) -> Option<Instant> {
    match refusal {
        Refusal::OpenUntil(t) => Some(current.map_or(t, |c| c.min(t))),
        Refusal::ProbesBusy => current,
    }
}
