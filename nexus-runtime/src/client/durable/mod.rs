//! Durability of the caller's operations: every operation lives in a
//! [`CallerStore`], and a restarted process (or another replica) picks
//! it up where it was.
//!
//! # What is recorded when
//! - **Scheduled**: before its first attempt, the operation's task inserts its record: request
//!   id, endpoint, service, operation, input, effective options (as versioned JSON), the absolute
//!   deadlines of its timeouts, and (with replicas) this client's lease. A request id already
//!   recorded for the same endpoint, service and operation is not started again: the new handle
//!   follows the recorded operation.
//! - **Every transition** of the driver (attempt made, backing off with the next attempt's time
//!   and the last failure, blocked by the breaker, started with its token and target, cancel
//!   requested, finished with its result or error) goes through `Driver::publish`, which writes it
//!   with the store's compare-and-set before handles see it. A lost compare-and-set means someone
//!   else changed the operation: the driver reads it again and adopts a recorded completion, a
//!   cancel request, or a takeover by another replica.
//! - **Completions** are recorded by the callback receiver (or the in-process sink) with
//!   `record_completion` *before* it answers 200; the driver running the operation here is woken
//!   with the final record.
//!
//! A client built without a store (or a retention) keeps nothing once an operation ends, and
//! records nothing while it runs: nobody could resume it. Its operations live in its registry of
//! running operations, which also does what the store does for a durable client: it finds a
//! running operation by request id (deduplication) and checks and records completions before they
//! are acknowledged. Handles follow every transition through the registry.
//!
//! # Recovery
//! When a [`Client`](crate::Client) with a store starts (`build()` inside a Tokio runtime, or the
//! first `schedule`/`recover` otherwise), a background *caretaker* resumes unfinished operations
//! ([`Client::recover`](crate::Client::recover) waits for that first pass): operations not yet
//! started are attempted again with the same request id, after the backoff recorded; started
//! ones wait for their completion, their timeouts counting from the recorded deadlines; a pending
//! cancellation is carried out again. It then purges finished records older than the retention.
//!
//! # Replicas ([`ReplicaConfig`])
//! Several processes share one store (PostgreSQL). Each drives only the operations it holds a
//! lease on: it renews its leases, claims operations whose lease expired (their owner died), and
//! stops driving one that another replica claimed. Completions reach whoever drives the operation
//! through the store: replicas share one callback address, any replica's receiver records any
//! completion, and the lease holder notices it by re-reading the records it drives
//! ([`ReplicaConfig::poll_interval`]). A handle for an operation another replica drives follows its
//! record in the store.

pub(crate) mod mirror;
pub(crate) mod options;
pub(crate) mod recovery;
pub(crate) mod task;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::store::CallerStore;

/// How long finished operations stay in an explicitly configured store by default (one week).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Settings of a client that shares its store with other replicas of the same service.
///
/// Leases are how replicas split the work: the replica that schedules an operation holds its
/// lease and renews it every `renew_interval`; a replica that stops renewing (it died) loses its
/// operations `lease` after its last renewal, and another claims them (looking every
/// `claim_interval`, up to `claim_batch` at a time).
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::client::ReplicaConfig;
///
/// let config = ReplicaConfig::default().lease(Duration::from_secs(10)).renew_interval(Duration::from_secs(3));
/// assert_eq!(config.lease_duration(), Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    lease: Duration,
    renew_interval: Duration,
    claim_interval: Duration,
    claim_batch: usize,
    poll_interval: Duration,
}

impl Default for ReplicaConfig {
    /// Lease 30 s, renewed every 10 s; claims every 5 s, 100 at a time; records re-read every 1 s.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            renew_interval: Duration::from_secs(10),
            claim_interval: Duration::from_secs(5),
            claim_batch: 100,
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl ReplicaConfig {
    /// The default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a lease lasts without renewal (default 30 s): how soon the operations of a dead
    /// replica are taken over.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often leases are renewed (default 10 s); keep it well below the lease.
    #[must_use]
    pub fn renew_interval(mut self, interval: Duration) -> Self {
        self.renew_interval = interval;
        self
    }

    /// How often to look for operations whose lease expired (default 5 s).
    #[must_use]
    pub fn claim_interval(mut self, interval: Duration) -> Self {
        self.claim_interval = interval;
        self
    }

    /// How many operations one claim takes at most (default 100).
    #[must_use]
    pub fn claim_batch(mut self, batch: usize) -> Self {
        self.claim_batch = batch.max(1);
        self
    }

    /// How often a driven operation's record is re-read (default 1 s), to notice a completion
    /// another replica's receiver recorded, a cancel requested from another replica, or a
    /// takeover; also how often a handle following another replica's operation refreshes.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The lease duration.
    pub fn lease_duration(&self) -> Duration {
        self.lease
    }

    pub(crate) fn renew_every(&self) -> Duration {
        self.renew_interval.max(Duration::from_millis(1))
    }

    pub(crate) fn claim_every(&self) -> Duration {
        self.claim_interval.max(Duration::from_millis(1))
    }

    pub(crate) fn batch(&self) -> usize {
        self.claim_batch
    }

    pub(crate) fn poll_every(&self) -> Duration {
        self.poll_interval.max(Duration::from_millis(1))
    }
}

/// A client's durability settings, resolved at build.
pub(crate) struct Durability {
    pub store: Arc<dyn CallerStore>,
    /// Whether the store was configured: operations then outlive their handles (dropping every
    /// handle does not abandon them; `attach` finds them again).
    pub persistent: bool,
    pub owner: String,
    pub replicas: Option<ReplicaConfig>,
    pub retention: Duration,
    pub purge_interval: Duration,
    /// Whether this client keeps nothing once an operation ends (built without a store or a
    /// retention): see [`Durability::keeps_nothing`].
    pub ephemeral: bool,
    /// Whether completions without a callback secret are accepted for records made before
    /// completion secrets existed (see
    /// [`ClientBuilder::accept_legacy_unsigned_completions`](crate::client::ClientBuilder::accept_legacy_unsigned_completions)).
    pub accept_legacy_unsigned: bool,
}

impl fmt::Debug for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Durability")
            .field("persistent", &self.persistent)
            .field("owner", &self.owner)
            .field("replicas", &self.replicas)
            .field("retention", &self.retention)
            .field("accept_legacy_unsigned", &self.accept_legacy_unsigned)
            .finish_non_exhaustive()
    }
}

impl Durability {
    /// The poll interval of driven operations: only with replicas.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.replicas.as_ref().map(ReplicaConfig::poll_every)
    }

    /// Whether this client keeps nothing once an operation ends (built without a store or a
    /// retention): its operations are not recorded in its (private, empty) store at all; they
    /// live in its registry while they run (see the module docs).
    pub fn keeps_nothing(&self) -> bool {
        self.ephemeral
    }

    /// Whether an awaited call runs its driver inline: only for a client that keeps nothing
    /// once an operation ends (its operations end with their observers, so the future of the
    /// call may hold the driver).
    pub fn runs_inline(&self) -> bool {
        self.keeps_nothing() && !self.persistent && self.replicas.is_none()
    }

    /// The default purge interval for a retention: a quarter of it, between 1 s and 10 min.
    pub fn default_purge_interval(retention: Duration) -> Duration {
        (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }
}
