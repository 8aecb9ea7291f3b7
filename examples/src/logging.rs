//! The examples' log: events at `default_level` (or as `RUST_LOG` says) on stderr.
//!
//! With `RUST_LOG` unset the log records events only: the runtime's per-request spans
//! (`nexus.handle`, `nexus.call`, ...) are then never built, which is most of what a log costs a
//! busy handler even when it prints nothing per request. Setting `RUST_LOG` (for example
//! `RUST_LOG=info` or `RUST_LOG=nexus_runtime=debug`) records the spans too, and each line then
//! carries the fields of the spans it happened in (service, operation, request id, ...).

use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::{Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the log as the global subscriber.
pub fn init(default_level: &str) {
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match EnvFilter::try_from_default_env() {
        Ok(filter) => tracing_subscriber::registry()
            .with(fmt.with_filter(filter))
            .init(),
        Err(_) => tracing_subscriber::registry()
            .with(
                fmt.with_filter(EnvFilter::new(default_level))
                    .with_filter(filter_fn(|metadata| metadata.is_event())),
            )
            .init(),
    }
}
