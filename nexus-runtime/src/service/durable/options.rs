//! How a durable dispatcher uses its store: who it is, leases, and the completion outbox.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::machinery::{Jitter, RetryPolicy};

/// Settings of a dispatcher with a store ([`DispatcherBuilder::store`]).
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::service::{DurabilityOptions, OutboxOptions};
///
/// // One replica of several sharing a PostgreSQL store:
/// let options = DurabilityOptions::default()
///     .owner("fraud-handler-2")
///     .lease(Duration::from_secs(20))
///     .outbox(OutboxOptions::default().max_age(Duration::from_secs(3600)));
/// assert_eq!(options.owner_id(), "fraud-handler-2");
/// ```
///
/// [`DispatcherBuilder::store`]: super::super::DispatcherBuilder::store
#[derive(Clone, Debug)]
pub struct DurabilityOptions {
    pub(crate) owner: String,
    pub(crate) lease: Duration,
    pub(crate) start_claim: Duration,
    pub(crate) takeover_interval: Duration,
    pub(crate) retention: Option<Duration>,
    pub(crate) outbox: OutboxOptions,
}

impl Default for DurabilityOptions {
    fn default() -> Self {
        Self {
            owner: Self::DEFAULT_OWNER.to_owned(),
            lease: Duration::from_secs(30),
            start_claim: Duration::from_secs(60),
            takeover_interval: Duration::from_secs(30),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            outbox: OutboxOptions::default(),
        }
    }
}

impl DurabilityOptions {
    /// The default owner id.
    pub const DEFAULT_OWNER: &'static str = "nexus-handler";

    /// Who this dispatcher is among the dispatchers sharing its store (default
    /// [`DEFAULT_OWNER`](Self::DEFAULT_OWNER)). It holds leases on the async operations it runs.
    ///
    /// Keep it **the same across restarts** of one process: a restarted dispatcher resumes (or
    /// fails) what its predecessor with that owner id left running, at once. Give **each
    /// replica its own** (say, its pod or host name) when several share one store: a replica
    /// takes over the operations of another only once that one stopped renewing its leases. Two
    /// live dispatchers with the same owner id on one store may run the same operation twice.
    #[must_use]
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// The owner id.
    pub fn owner_id(&self) -> &str {
        &self.owner
    }

    /// How long a lease on a running async operation lasts unless renewed (default 30 s); the
    /// dispatcher renews its leases every third of it. A replica that dies leaves its operations
    /// to the others once their leases expire.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often the dispatcher looks for operations whose lease expired (their owner died) to
    /// take them over (default 30 s). At start-up it looks at once.
    #[must_use]
    pub fn takeover_interval(mut self, interval: Duration) -> Self {
        self.takeover_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long a start request without a request deadline holds its request id while its
    /// handler runs (default 60 s): if the process dies meanwhile, a retry with the same request
    /// id runs the handler again after that long. A start with a deadline holds it until the
    /// deadline (plus a second).
    #[must_use]
    pub fn start_claim(mut self, claim: Duration) -> Self {
        self.start_claim = claim;
        self
    }

    /// How long records are kept once they are done with (default 7 days; `None` keeps them
    /// forever): answers to starts (a retry with the same request id after that long runs the
    /// handler again), finished operations, and delivered or dead completions. The dispatcher
    /// deletes older ones at start-up and every hour. Running operations and pending deliveries
    /// are never deleted.
    #[must_use]
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// How completions are delivered to callback URLs.
    #[must_use]
    pub fn outbox(mut self, outbox: OutboxOptions) -> Self {
        self.outbox = outbox;
        self
    }
}

/// How the completion outbox delivers completions to callback URLs: each delivery is one attempt
/// of the dispatcher's completion sender; a retryable failure is tried again after a backoff,
/// until the callback receiver accepts it, answers a non-retryable error, or the completion is
/// older than [`max_age`](Self::max_age) (then it is kept as a dead delivery, see
/// [`OutboxStore::list_dead_deliveries`](crate::store::OutboxStore::list_dead_deliveries)).
///
/// Defaults: retries after 1 s, doubling up to 10 min, with Temporal's 20% jitter and no attempt
/// limit; completions expire after 24 h; the outbox is polled every second (and woken at once
/// when a completion is enqueued); deliveries are claimed 32 at a time, and up to 256 attempts are
/// in flight, each on its own: a slow or dead receiver holds back only its own deliveries.
#[derive(Clone)]
pub struct OutboxOptions {
    pub(crate) retry: RetryPolicy,
    pub(crate) jitter: Arc<Jitter>,
    pub(crate) max_age: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) batch: usize,
    pub(crate) concurrency: usize,
    pub(crate) visibility: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default()
                .maximum_interval(Duration::from_secs(600))
                .jitter(0.2),
            jitter: Arc::new(Jitter::from_entropy()),
            max_age: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_secs(1),
            batch: 32,
            concurrency: 256,
            visibility: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for OutboxOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxOptions")
            .field("retry", &self.retry)
            .field("max_age", &self.max_age)
            .field("poll_interval", &self.poll_interval)
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .field("visibility", &self.visibility)
            .finish_non_exhaustive()
    }
}

impl OutboxOptions {
    /// The backoff between attempts of one delivery; `maximum_attempts`, if set, bounds them.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The randomness of the backoff (seed it for reproducible schedules).
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = Arc::new(jitter);
        self
    }

    /// How long after its completion a delivery is given up (default 24 h).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How often the outbox is checked for due deliveries (default 1 s).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How many deliveries are claimed at a time (default 32).
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How many delivery attempts may be in flight at once (default 256). Each runs on its own:
    /// one that waits for a slow receiver holds back nothing else until this many do.
    #[must_use]
    pub fn concurrency(mut self, attempts: usize) -> Self {
        self.concurrency = attempts.max(1);
        self
    }

    /// How long a claimed delivery stays hidden from other senders (default 60 s); one attempt
    /// is bounded by half of it. A sender that dies mid-attempt delays that delivery this long.
    #[must_use]
    pub fn visibility(mut self, visibility: Duration) -> Self {
        self.visibility = visibility.max(Duration::from_millis(20));
        self
    }
}
