//! The kill schedule of a run, drawn from a seeded RNG: the same seed gives the same schedule
//! (the timing of the processes themselves still varies from run to run).

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{RngExt as _, SeedableRng as _};

/// What one event kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// `fraud-handler` alone.
    Handler,
    /// `payments` alone.
    Payments,
    /// Both, one `gap_ms` after the other, so that both are down at once; restarted in the
    /// order `restart_handler_first` says, `gap_ms` apart.
    Both {
        handler_first: bool,
        restart_handler_first: bool,
        gap_ms: u64,
    },
}

/// One kill (or two), and the restart after it.
#[derive(Clone, Debug)]
pub struct Event {
    /// How many start executions the handler must have logged before it fires.
    pub at_starts: u64,
    /// How long after that it kills: less than half a check, so that the start that triggered
    /// it is still in flight (its claim open, or its check running) when the handler dies, and
    /// its operation unfinished when payments dies.
    pub delay_ms: u64,
    /// How long the killed process stays down.
    pub down_ms: u64,
    /// What it kills.
    pub kill: Kill,
}

/// Whose store fills up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Handler,
    Payments,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Self::Handler => "fraud-handler",
            Self::Payments => "payments",
        }
    }
}

/// A full disk: one side's store has no room from `at_starts` start executions on, for
/// `full_ms`; then it has room again (the process is not restarted).
#[derive(Clone, Debug)]
pub struct DiskFull {
    pub side: Side,
    pub at_starts: u64,
    pub full_ms: u64,
}

/// A run's schedule.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How long each check takes in the handler.
    pub check_delay_ms: u64,
    /// The events, in the order they fire.
    pub events: Vec<Event>,
    /// The full disks, in the order they come (the disk-full scenario; no kills then).
    pub disk_full: Vec<DiskFull>,
}

impl Plan {
    /// `handler_kills` kills of the handler and `payments_kills` of payments, at random points
    /// between 5% and 90% of the run's `count` starts (so there is always work in flight and
    /// still to schedule). With at least two handler kills, half the seeds kill both processes
    /// together once (that counts as one kill of each). `check_delay_ms` is drawn between 200
    /// and 500 ms unless given.
    pub fn new(
        seed: u64,
        count: u64,
        handler_kills: u32,
        payments_kills: u32,
        check_delay_ms: Option<u64>,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let check_delay_ms = check_delay_ms.unwrap_or_else(|| rng.random_range(200..=500));
        let mut kills: Vec<Kill> = std::iter::repeat_n(Kill::Handler, handler_kills as usize)
            .chain(std::iter::repeat_n(Kill::Payments, payments_kills as usize))
            .collect();
        if handler_kills >= 2 && payments_kills >= 1 && rng.random_bool(0.5) {
            let h = kills.iter().position(|k| *k == Kill::Handler);
            kills.remove(h.unwrap_or_default());
            let p = kills.iter().position(|k| *k == Kill::Payments);
            kills.remove(p.unwrap_or_default());
            kills.push(Kill::Both {
                handler_first: rng.random_bool(0.5),
                restart_handler_first: rng.random_bool(0.5),
                gap_ms: rng.random_range(0..=500),
            });
        }
        kills.shuffle(&mut rng);
        let (low, high) = (count * 5 / 100, (count * 90 / 100).max(1));
        let mut at: Vec<u64> = kills.iter().map(|_| rng.random_range(low..=high)).collect();
        at.sort_unstable();
        let events = kills
            .into_iter()
            .zip(at)
            .map(|(kill, at_starts)| Event {
                at_starts,
                delay_ms: rng.random_range(0..check_delay_ms / 2),
                down_ms: rng.random_range(100..=1500),
                kill,
            })
            .collect();
        Self {
            check_delay_ms,
            events,
            disk_full: Vec::new(),
        }
    }

    /// The disk-full scenario: no kills; each side's store is full once, in an order the seed
    /// draws, the first time between 15% and 30% of the run's starts, the second between 50% and
    /// 65%, each for 2.5 to 4 s: longer than a new operation's insert is retried (1.5 s), so that
    /// payments cannot record some checks.
    pub fn disk_full(seed: u64, count: u64, check_delay_ms: Option<u64>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let check_delay_ms = check_delay_ms.unwrap_or_else(|| rng.random_range(200..=500));
        let mut sides = [Side::Handler, Side::Payments];
        sides.shuffle(&mut rng);
        let windows = [(15, 30), (50, 65)];
        let disk_full = sides
            .into_iter()
            .zip(windows)
            .map(|(side, (low, high))| DiskFull {
                side,
                at_starts: rng.random_range(count * low / 100..=count * high / 100),
                full_ms: rng.random_range(2500..=4000),
            })
            .collect();
        Self {
            check_delay_ms,
            events: Vec::new(),
            disk_full,
        }
    }

    /// How many times the plan kills the handler, and payments.
    pub fn kills(&self) -> (usize, usize) {
        let handler = |e: &&Event| !matches!(e.kill, Kill::Payments);
        let payments = |e: &&Event| !matches!(e.kill, Kill::Handler);
        (
            self.events.iter().filter(handler).count(),
            self.events.iter().filter(payments).count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_plan_with_the_kills_asked_for() {
        for seed in 0..50 {
            let plan = Plan::new(seed, 1000, 3, 3, None);
            let again = Plan::new(seed, 1000, 3, 3, None);
            assert_eq!(format!("{plan:?}"), format!("{again:?}"));
            assert_eq!(plan.kills(), (3, 3));
            assert!((200..=500).contains(&plan.check_delay_ms));
            assert!(
                plan.events
                    .windows(2)
                    .all(|w| w[0].at_starts <= w[1].at_starts)
            );
            assert!(
                plan.events
                    .iter()
                    .all(|e| (50..=900).contains(&e.at_starts)
                        && e.delay_ms < plan.check_delay_ms / 2)
            );
            // At least one handler kill while payments runs.
            assert!(plan.events.iter().any(|e| e.kill == Kill::Handler));
        }
        let both = (0..50)
            .filter(|&seed| {
                Plan::new(seed, 1000, 3, 3, None)
                    .events
                    .iter()
                    .any(|e| matches!(e.kill, Kill::Both { .. }))
            })
            .count();
        assert!(
            both > 10 && both < 40,
            "{both} of 50 seeds kill both at once"
        );
        assert_eq!(Plan::new(7, 1000, 3, 3, Some(250)).check_delay_ms, 250);
    }

    #[test]
    fn the_disk_full_plan_fills_each_side_once_in_a_seeded_order() {
        let mut handler_first = 0;
        for seed in 0..50 {
            let plan = Plan::disk_full(seed, 1000, None);
            assert_eq!(
                format!("{plan:?}"),
                format!("{:?}", Plan::disk_full(seed, 1000, None))
            );
            assert!(plan.events.is_empty());
            assert_eq!(plan.kills(), (0, 0));
            let [first, second] = &plan.disk_full[..] else {
                panic!("two full disks: {plan:?}");
            };
            assert_ne!(first.side, second.side);
            assert!((150..=300).contains(&first.at_starts));
            assert!((500..=650).contains(&second.at_starts));
            assert!(
                plan.disk_full
                    .iter()
                    .all(|d| (2500..=4000).contains(&d.full_ms))
            );
            handler_first += usize::from(first.side == Side::Handler);
        }
        assert!(handler_first > 10 && handler_first < 40, "{handler_first}");
    }
}
