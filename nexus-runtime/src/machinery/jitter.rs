//! The randomness of backoff delays, injectable so that schedules are reproducible.

use std::fmt;
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// The random source of a client's backoff jitter. Seed it to make every retry schedule
/// reproducible (tests do); by default a client seeds it from the operating system.
///
/// A client draws one number per backoff, in the order its operations back off, so a seeded client
/// driven by one task (or by Tokio's paused-time test runtime) always waits the same delays:
///
/// ```
/// use nexus_runtime::machinery::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::default();
/// let schedule = |jitter: Jitter| -> Vec<_> {
///     (1..=3).map(|n| policy.delay(n, jitter.next_fraction())).collect()
/// };
/// assert_eq!(schedule(Jitter::seeded(7)), schedule(Jitter::seeded(7)));
/// ```
pub struct Jitter {
    rng: Mutex<StdRng>,
}

impl Jitter {
    /// A source seeded with `seed`: the same seed gives the same numbers.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// A source seeded from the operating system's entropy.
    pub fn from_entropy() -> Self {
        Self {
            rng: Mutex::new(rand::make_rng::<StdRng>()),
        }
    }

    /// The next number, uniform in `[0, 1)`.
    pub fn next_fraction(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random::<f64>()
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::from_entropy()
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jitter { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_repeat_and_differ_by_seed() {
        let draw = |j: Jitter| (0..8).map(|_| j.next_fraction()).collect::<Vec<_>>();
        let a = draw(Jitter::seeded(1));
        assert_eq!(a, draw(Jitter::seeded(1)));
        assert_ne!(a, draw(Jitter::seeded(2)));
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
    }
}
