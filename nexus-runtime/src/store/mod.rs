//! Durable records of operations: what a caller started and what a handler received.
//!
//! *Nothing is lost*: a caller records an operation before its first attempt and a completion
//! before it acknowledges it; a handler records the answer to each request id (so a retried start
//! never runs twice) and enqueues each completion in an outbox in the same transaction that
//! finishes the operation.
//!
//! Object-safe traits split the work by who needs it, because a process is often only a caller or
//! only a handler, and each component should see only its own records:
//! - [`CallerStore`]: operations this process started ([`CallerRecord`]), their state machine,
//!   completions received for them, leases between replicas, retention;
//! - [`HandlerStore`]: deduplication of starts by request id ([`StartKey`], [`BeginStart`]), async
//!   operations by token ([`AsyncOperationRecord`]) and their completion, leases, retention;
//! - [`OutboxStore`]: the completion deliveries ([`Delivery`]) that finishing an async operation
//!   enqueued, for the completion sender: due listing, retry bookkeeping, dead letters.
//!
//! [`Store`] is all three; every implementation here is a `Store`, so one database can serve a
//! process that both calls and handles (`Arc<dyn Store>` upcasts to each trait).
//!
//! Implementations, all run through the same test suite:
//! - [`MemoryStore`]: always available; for tests and processes that need no durability;
//! - `SqliteStore` (feature `sqlite`): the embedded default, one file in a directory of the user's
//!   choosing, WAL mode, versioned migrations embedded in the binary;
//! - `PostgresStore` (feature `postgres`): shared by the replicas of one service; leases let a
//!   replica take over the operations of one that died.
//!
//! Time is always passed in (`now: SystemTime`), never read by a store, so tests are
//! deterministic. Stored times keep microsecond precision (all three stores truncate alike).
//!
//! # How the caller side uses it
//! 1. Before the first attempt: [`CallerStore::insert`] a [`CallerRecord`] (state `scheduled`, with
//!    its lease when replicas share the store). [`InsertOutcome::Exists`] means this request id was
//!    started before: attach to that operation instead of starting another.
//! 2. On every transition, [`CallerStore::update`] the record. It is a compare-and-set on
//!    `version`: `false` means something else changed the operation (a completion, a cancel
//!    request, another replica's claim): [`CallerStore::get`] it and act on what is stored.
//! 3. The callback receiver calls [`CallerStore::record_completion`] with the callback id (the
//!    operation id) and answers 200 only after [`CompletionOutcome::Applied`]. The completion may
//!    arrive before the start response; the driver's later write then fails its compare-and-set.
//! 4. At start-up: resume [`CallerStore::list_unfinished`] (one process), or with replicas
//!    [`CallerStore::claim`] periodically, [`CallerStore::renew`] while alive and stop driving what
//!    renewal no longer returns; [`CallerStore::release_all`] at shutdown.
//!
//! # How the handler side uses it
//! 1. [`HandlerStore::begin_start`] before running a handler: run it only on
//!    [`BeginStart::Claimed`]; replay [`BeginStart::Answered`]; answer a retryable error on
//!    [`BeginStart::InFlight`].
//! 2. Then [`HandlerStore::finish_start`] with the answer (and, for an async answer, its
//!    [`AsyncOperationRecord`], in the same transaction), or [`HandlerStore::abandon_start`] after a
//!    retryable error so the retry runs the handler again.
//! 3. When async work ends, [`HandlerStore::complete_async`] finishes the record and enqueues the
//!    delivery in one transaction; a sender loop takes [`OutboxStore::claim_due_deliveries`] and
//!    reports each attempt with `mark_delivered`, `mark_retry` or `mark_dead` (the latter two
//!    naming the delivery as claimed: they do not apply once it was redirected).
//! 4. A repeated start answered with an async token names where the caller listens now:
//!    [`HandlerStore::retarget_async`] moves the completion there (the running operation's
//!    record, or its delivery still waiting in the outbox).
//! 5. At start-up: [`HandlerStore::list_unfinished_async`] (or `claim_async` with replicas), then
//!    resume the resumable ones and complete the others as failed.

mod caller;
mod error;
mod handler;
pub(crate) mod listing;
mod memory;
mod outbox;
mod records;
pub(crate) mod time;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use caller::{
    AppliedCompletion, CallerRecord, CallerStore, CancelRequestOutcome, CompletionOutcome,
    InsertOutcome, OperationDeadlines, OperationId, OperationState, RequestKey,
};
pub use error::StoreError;
pub use handler::{
    AsyncOperationRecord, AsyncState, BeginStart, CompleteAsync, HandlerPurge, HandlerStore,
    RetargetAsync, StartAnswer, StartClaim, StartKey, StoredCallback,
};
pub use listing::{
    AsyncQuery, CallerQuery, Cursor, DEFAULT_PAGE, DeliveryQuery, MAX_PAGE, caller_cursor,
    delivery_cursor,
};
pub use memory::MemoryStore;
pub use outbox::{Delivery, DeliveryId, DeliveryState, OutboxStore};
pub use records::Lease;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteDurability, SqliteStore};
/// The sqlx the PostgreSQL store is built on: for the option types of its constructors, and for
/// queries of your own on its pool.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[doc(no_inline)]
pub use sqlx;

use futures::future::BoxFuture;

/// What every store method returns: a boxed future, so the traits stay object-safe.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A store for both sides: what a process that calls and handles uses.
///
/// `Arc<dyn Store>` converts to `Arc<dyn CallerStore>`, `Arc<dyn HandlerStore>` or
/// `Arc<dyn OutboxStore>`.
pub trait Store: CallerStore + HandlerStore + OutboxStore {}

impl<T: CallerStore + HandlerStore + OutboxStore + ?Sized> Store for T {}
