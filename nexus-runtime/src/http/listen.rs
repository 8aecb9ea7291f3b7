//! The servers' accept loop: one task per connection under `max_connections`, graceful stop.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Routes, Shared};
use super::shutdown::Connections;

/// Accepts connections on `listener` until `stop`, then closes idle connections, lets requests
/// in flight finish, and returns once every connection has ended.
pub(crate) async fn accept_loop<R: Routes>(
    listener: TcpListener,
    shared: Arc<Shared<R>>,
    stop: CancellationToken,
) -> io::Result<()> {
    let max_connections = shared
        .limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let connections = Connections::new();
    let refused = Throttle::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_transient(&error) => continue,
            Err(error) => {
                // Out of file descriptors, typically: wait for some to be released instead of
                // spinning on the error.
                shared.warnings.warn(|suppressed| {
                    tracing::error!(%error, suppressed, "cannot accept connections; retrying in 100 ms");
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            refused.warn(|suppressed| {
                tracing::warn!(
                    %peer,
                    max_connections,
                    suppressed,
                    "connection refused: the server has max_connections connections open"
                );
            });
            continue;
        };
        // Small requests and answers: send them at once.
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection::run(
            stream,
            peer,
            shared.clone(),
            connections.watch(),
            permit,
        ));
    }
    drop(listener);
    connections.stop().await;
    Ok(())
}

/// Errors about one connection (it was reset before it was accepted), not about the listener.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Lets one log line through per interval, and counts those it held back, so a flood of
/// refused connections or failed handshakes does not flood the log.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            state: Mutex::new((None, 0)),
        }
    }
}

impl Throttle {
    /// Calls `log` with the number of lines held back since the last one, unless a line went
    /// out less than the interval ago.
    pub(crate) fn warn(&self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let suppressed = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.0 {
                Some(last) if now.duration_since(last) < self.interval => {
                    state.1 += 1;
                    return;
                }
                _ => {
                    let suppressed = state.1;
                    *state = (Some(now), 0);
                    suppressed
                }
            }
        };
        log(suppressed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let throttle = Throttle::default();
        let mut lines = Vec::new();
        for _ in 0..5 {
            throttle.warn(|n| lines.push(n));
        }
        assert_eq!(lines, [0]);
        tokio::time::advance(Duration::from_secs(11)).await;
        throttle.warn(|n| lines.push(n));
        throttle.warn(|n| lines.push(n));
        assert_eq!(lines, [0, 4]);
    }
}
