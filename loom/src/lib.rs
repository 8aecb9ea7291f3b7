//! Loom model checks of the runtime's hand-written concurrent structures.
//!
//! The runtime's files are compiled here as they are, with `--cfg loom` switching their
//! synchronisation primitives to loom's (see [`sync`]); loom then runs each test under every
//! interleaving of its threads (within its preemption bound). Without `--cfg loom` this crate is
//! empty.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p nexus-loom-tests --release
//! ```
#![cfg(loom)]

pub mod sync;

/// The queues into an operation's task (`nexus-runtime/src/client/queue.rs`).
#[path = "../../nexus-runtime/src/client/queue.rs"]
#[allow(dead_code, unreachable_pub)]
pub mod queue;

/// The cell that shows an operation's record (`nexus-runtime/src/client/record_cell.rs`).
#[path = "../../nexus-runtime/src/client/record_cell.rs"]
#[allow(dead_code, unreachable_pub)]
pub mod record_cell;

#[cfg(test)]
mod queue_models;

#[cfg(test)]
mod record_cell_models;
