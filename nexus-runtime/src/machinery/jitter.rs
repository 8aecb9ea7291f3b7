//! The randomness of backoff delays, injectable so that schedules are reproducible.

use std::fmt;
use std::sync::Mutex;

use chacha20::ChaCha8Rng;
use chacha20::rand_core::{Rng as _, SeedableRng as _};

/// The random source of a client's backoff jitter. Seed it to make every retry schedule
/// reproducible (tests do); by default a client seeds it from the operating system.
///
/// A seeded source is the ChaCha8 keystream whose 256-bit key is the seed's eight little-endian
/// bytes followed by zeros (nonce and counter zero); each number is the top 53 bits of the next
/// 64-bit word, divided by 2^53. That is a specified algorithm, not a library's choice of the
/// day: a seed gives the same numbers in every version.
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
    rng: Mutex<ChaCha8Rng>,
}

impl Jitter {
    /// A source seeded with `seed`: the same seed gives the same numbers.
    pub fn seeded(seed: u64) -> Self {
        let mut key = [0; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        Self {
            rng: Mutex::new(ChaCha8Rng::from_seed(key)),
        }
    }

    /// A source seeded from the operating system's entropy.
    pub fn from_entropy() -> Self {
        Self {
            rng: Mutex::new(rand::make_rng::<ChaCha8Rng>()),
        }
    }

    /// The next number, uniform in `[0, 1)`.
    pub fn next_fraction(&self) -> f64 {
        let word = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64();
        (word >> 11) as f64 / (1u64 << 53) as f64
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

    /// The numbers of a seed are pinned: a change of them changes every user's schedules.
    #[test]
    fn a_seed_gives_the_same_numbers_in_every_version() {
        let jitter = Jitter::seeded(7);
        let bits: Vec<u64> = (0..4)
            .map(|_| (jitter.next_fraction() * (1u64 << 53) as f64) as u64)
            .collect();
        assert_eq!(bits, PINNED);
    }

    const PINNED: [u64; 4] = [
        6882482394073239,
        4196792939664307,
        51111481201919,
        2714532946501702,
    ];
}
