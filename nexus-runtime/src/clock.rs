//! Wall-clock time that follows tokio's clock.
//!
//! Durable records hold wall-clock times ([`SystemTime`]), while timers run on tokio's
//! [`Instant`]. [`now`] derives the wall clock from tokio's clock, anchored once per process, so a
//! test with paused time (`#[tokio::test(start_paused = true)]`) sees persisted times advance
//! exactly as its timers do, and production code sees the real wall clock (the two drift apart only
//! by however much the system clock is stepped while the process runs).

use std::sync::OnceLock;
use std::time::SystemTime;

use tokio::time::Instant;

static ANCHOR: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();

fn anchor() -> (SystemTime, std::time::Instant) {
    *ANCHOR.get_or_init(|| (SystemTime::now(), Instant::now().into_std()))
}

/// The current wall-clock time, advancing with tokio's clock (paused time included).
pub fn now() -> SystemTime {
    let (wall, mono) = anchor();
    let instant = Instant::now().into_std();
    match instant.checked_duration_since(mono) {
        Some(elapsed) => wall + elapsed,
        // Another runtime's paused clock can lag the anchor: keep the offset signed.
        None => wall
            .checked_sub(mono - instant)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// The tokio instant at which the wall clock (as [`now`] reports it) reaches `at`; instants in the
/// past map to now.
pub fn instant_at(at: SystemTime) -> Instant {
    let now = now();
    match at.duration_since(now) {
        Ok(ahead) => Instant::now() + ahead,
        Err(_) => Instant::now(),
    }
}

/// The wall-clock time of a tokio instant on the anchored clock [`now`] follows: the same instant
/// always gives the same time (unlike [`system_at`], which measures from the present).
pub fn wall_at(at: Instant) -> SystemTime {
    let (wall, mono) = anchor();
    let at = at.into_std();
    match at.checked_duration_since(mono) {
        Some(elapsed) => wall + elapsed,
        None => wall
            .checked_sub(mono - at)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// The wall-clock time of a tokio instant.
pub fn system_at(at: Instant) -> SystemTime {
    let now = Instant::now();
    if at >= now {
        self::now() + (at - now)
    } else {
        self::now()
            .checked_sub(now - at)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let before = now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let after = now();
        let advanced = after.duration_since(before).unwrap();
        assert!(advanced >= Duration::from_secs(3600) && advanced < Duration::from_secs(3601));
        let deadline = after + Duration::from_secs(10);
        assert_eq!(
            instant_at(deadline) - Instant::now(),
            Duration::from_secs(10)
        );
        let back = system_at(Instant::now() + Duration::from_secs(5));
        assert_eq!(back.duration_since(after).unwrap(), Duration::from_secs(5));
    }
}
