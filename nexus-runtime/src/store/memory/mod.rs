//! The in-memory store: everything in one mutex-guarded map per record kind. Nothing survives the
//! process; it is for tests and for processes that need no durability.

mod caller;
mod handler;
mod listing;
mod outbox;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures::future::{self, FutureExt as _};

use super::time::{truncate, truncate_opt};
use super::{
    AsyncOperationRecord, CallerRecord, Delivery, DeliveryId, Lease, OperationDeadlines,
    OperationId, RequestKey, StartAnswer, StartClaim, StartKey, StoreError, StoreFuture,
};

/// A store in memory. Clones share the same records.
///
/// ```
/// use std::sync::Arc;
/// use nexus_runtime::store::{CallerStore, HandlerStore, MemoryStore, OutboxStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let caller: Arc<dyn CallerStore> = store.clone();
/// let handler: Arc<dyn HandlerStore> = store.clone();
/// let outbox: Arc<dyn OutboxStore> = store;
/// # let _ = (caller, handler, outbox);
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    caller: crate::id::IdMap<CallerRecord>,
    by_request: HashMap<RequestKey, OperationId>,
    starts: HashMap<StartKey, StartRow>,
    operations: HashMap<String, AsyncOperationRecord>,
    deliveries: HashMap<DeliveryId, Delivery>,
}

/// The deduplication record of one start request.
struct StartRow {
    claim: Option<StartClaim>,
    answer: Option<StartAnswer>,
    answered_at: Option<SystemTime>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state under the lock and returns its result as a ready future.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> StoreFuture<'static, T> {
        let result = f(&mut self.lock());
        future::ready(result).boxed()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("caller_operations", &state.caller.len())
            .field("starts", &state.starts.len())
            .field("async_operations", &state.operations.len())
            .field("deliveries", &state.deliveries.len())
            .finish()
    }
}

/// Truncates every time in a lease as the SQL stores do.
fn normalize_lease(lease: &Option<Lease>) -> Result<Option<Lease>, StoreError> {
    lease
        .as_ref()
        .map(|l| Ok(Lease::new(l.owner.clone(), truncate(l.expires_at)?)))
        .transpose()
}

/// The times of a caller record, truncated as the SQL stores keep them.
pub(crate) struct CallerTimes {
    next_attempt_at: Option<SystemTime>,
    cancel_requested_at: Option<SystemTime>,
    scheduled_at: SystemTime,
    started_at: Option<SystemTime>,
    closed_at: Option<SystemTime>,
    deadlines: OperationDeadlines,
}

impl CallerTimes {
    pub(crate) fn of(r: &CallerRecord) -> Result<Self, StoreError> {
        Ok(Self {
            next_attempt_at: truncate_opt(r.next_attempt_at)?,
            cancel_requested_at: truncate_opt(r.cancel_requested_at)?,
            scheduled_at: truncate(r.scheduled_at)?,
            started_at: truncate_opt(r.started_at)?,
            closed_at: truncate_opt(r.closed_at)?,
            deadlines: OperationDeadlines {
                schedule_to_close: truncate_opt(r.deadlines.schedule_to_close)?,
                schedule_to_start: truncate_opt(r.deadlines.schedule_to_start)?,
                start_to_close: truncate_opt(r.deadlines.start_to_close)?,
            },
        })
    }

    pub(crate) fn write(self, r: &mut CallerRecord) {
        r.next_attempt_at = self.next_attempt_at;
        r.cancel_requested_at = self.cancel_requested_at;
        r.scheduled_at = self.scheduled_at;
        r.started_at = self.started_at;
        r.closed_at = self.closed_at;
        r.deadlines = self.deadlines;
    }
}

/// `record` with its times truncated as the SQL stores keep them.
fn normalize_caller(record: &CallerRecord) -> Result<CallerRecord, StoreError> {
    let times = CallerTimes::of(record)?;
    let lease = normalize_lease(&record.lease)?;
    let mut r = record.clone();
    times.write(&mut r);
    r.lease = lease;
    Ok(r)
}

fn normalize_async(record: &AsyncOperationRecord) -> Result<AsyncOperationRecord, StoreError> {
    let mut r = record.clone();
    r.cancel_requested_at = truncate_opt(r.cancel_requested_at)?;
    r.deadline = truncate_opt(r.deadline)?;
    r.started_at = truncate(r.started_at)?;
    r.closed_at = truncate_opt(r.closed_at)?;
    r.lease = normalize_lease(&r.lease)?;
    Ok(r)
}
