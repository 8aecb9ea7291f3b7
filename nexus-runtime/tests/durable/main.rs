//! Durability: callers whose operations survive restarts, replicas, retention and queueing
//! (`caller_*`), and handlers that deduplicate starts, deliver completions through an outbox,
//! recover after a crash and follow a new callback (`handler_*`). On the memory store, SQLite and
//! PostgreSQL (`NEXUS_TEST_POSTGRES_URL`) where a test says so.

#[path = "../support/mod.rs"]
mod support;

pub mod caller_queue;
pub mod caller_races;
pub mod caller_receiver;
pub mod caller_replicas;
pub mod caller_restart;
pub mod caller_retention;
pub mod handler_dedup;
pub mod handler_outbox;
pub mod handler_recovery;
pub mod handler_retarget;
