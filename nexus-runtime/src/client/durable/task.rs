//! One task per local operation: it records a new operation, drives it, and follows it while
//! another replica drives it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::mirror;
use super::options::StoredOptions;
use crate::client::driver::{Command, Driver, DriverEnd, Outcome, Record, Spec, StartBody};
use crate::client::endpoint::EndpointState;
use crate::client::info::OperationState;
use crate::client::pending::{Attached, Inbound, Local, Wake};
use crate::client::{AttachError, Client};
use crate::clock;
use crate::error::CallError;
use crate::machinery::Deadlines;
use crate::observe::spans::InSpan as _;
use crate::store::{CallerRecord, InsertOutcome, StoreError};

/// How an operation's task begins.
pub(crate) enum Begin {
    /// A new operation: record it, then drive it with the options of the call.
    New(Box<NewOperation>),
    /// Drive a stored operation from where it is (resumed, claimed or attached).
    Resume(Box<CallerRecord>),
    /// Follow a stored operation another replica drives.
    Follow,
}

/// A new operation, as the call gave it.
pub(crate) struct NewOperation {
    pub record: CallerRecord,
    pub endpoint: Arc<EndpointState>,
    pub spec: Spec,
    pub deadlines: Deadlines,
    pub scope_cancel: Option<CancellationToken>,
    /// Its `nexus.call` span, which the driver runs in.
    pub span: tracing::Span,
}

impl NewOperation {
    /// The driver of this operation, once it is recorded, and the span it runs in.
    fn into_driver(self, client: &Client, local: Local) -> (Driver, tracing::Span) {
        let driver = Driver::new(
            client.clone(),
            self.endpoint,
            self.spec,
            self.deadlines,
            self.record,
            local,
            self.scope_cancel,
        );
        (driver, self.span)
    }
}

/// How many times in all a new operation's insert is tried when the store is unavailable.
const INSERT_TRIES: u32 = 5;

/// Runs one local operation until it ends here; then forgets it.
///
/// The task lives as long as the operation, mostly inside `Driver::run`: that is the one place
/// the driver runs (a second call site would double its share of the task), and the rare paths
/// (an operation recorded already, another replica driving it) are boxed.
#[allow(clippy::manual_async_fn)] // See the comment in the body.
pub(crate) fn run(
    client: Client,
    mut local: Local,
    mut begin: Begin,
) -> impl std::future::Future<Output = ()> + Send {
    // An async block rather than an async fn: an async fn's future keeps its arguments twice
    // (as they came, and as the locals they are moved into), for the whole life of the task.
    async move {
        let id = local.id;
        loop {
            let begun = match begin {
                // Boxed: inline, the insert's state would set where the driver's future lies
                // in this task, which it occupies for most of the operation's life.
                Begin::New(new) => match Box::pin(begin_new(&client, local, new)).await {
                    Some(begun) => begun,
                    None => break,
                },
                Begin::Resume(record) => match current(&client, record).await {
                    record if record.state.is_terminal() => {
                        show(&local, &record);
                        break;
                    }
                    record => match resume_parts(&client, &record) {
                        Ok((endpoint, spec, deadlines)) => {
                            show(&local, &record);
                            let span = crate::observe::spans::call(
                                &record.endpoint,
                                &record.service,
                                &record.operation,
                                &record.request_id,
                            );
                            let driver = Driver::new(
                                client.clone(),
                                endpoint,
                                spec,
                                deadlines,
                                *record,
                                local,
                                None,
                            );
                            (driver, span)
                        }
                        Err(e) => {
                            tracing::error!(operation_id = %id, error = %e, "cannot resume the operation");
                            show_error(&local, CallError::Invalid(e.to_string()));
                            break;
                        }
                    },
                },
                Begin::Follow => match Box::pin(follow(&client, &mut local)).await {
                    Some(record) => {
                        begin = Begin::Resume(record);
                        continue;
                    }
                    None => break,
                },
            };
            let (driver, span) = begun;
            let (back, end) = Box::new(driver).run(span).await;
            local = back;
            if end == DriverEnd::TakenOver {
                begin = Begin::Follow;
            } else {
                break;
            }
        }
        client.registry().remove(id);
    }
}

/// Runs a new operation on the calling task (an awaited call of a client that keeps nothing,
/// see [`Client::call`](crate::Client)) and returns its outcome. `attached` stands for the call's
/// handle: the operation is abandoned when this future is dropped, not before.
///
/// The operation is driven exactly as a spawned task does it; only what ends it differs:
/// dropping this future forgets it (removed from the registry, so a late completion is refused
/// as for an abandoned operation).
pub(crate) async fn run_inline(
    client: &Client,
    local: Local,
    new: Box<NewOperation>,
    attached: Attached,
) -> Option<Outcome> {
    let _forget = Forget {
        client,
        id: local.id,
    };
    // Only the command sender is kept (its drop is what abandons the operation): without a
    // subscribed record, the driver's transitions wake nobody (see `Driver::publish`).
    let Attached {
        commands, record, ..
    } = attached;
    drop(record);
    let local = match insert(client, &new.record).await {
        Ok(InsertOutcome::Inserted) => {
            let (driver, span) = (*new).into_driver(client, local);
            // Pinned where it is made; the span wraps the pin.
            let running = std::pin::pin!(driver.run_inline());
            running.in_span(span).await.0
        }
        Ok(InsertOutcome::Exists(existing)) => {
            client.registry().remove(local.id);
            return Box::pin(follow_existing(client, *existing)).await;
        }
        Err(e) => {
            show_error(&local, insert_error(&e));
            local
        }
    };
    drop(commands);
    client.registry().remove(local.id);
    // Nobody else holds the record any more (unless a handle attached meanwhile): take the
    // outcome rather than copy it.
    let mut outcome = None;
    let shared = local.record.receiver_count() > 0;
    local.record.send_if_modified(|record| {
        outcome = if shared {
            record.cloned_outcome()
        } else {
            record.outcome.take().map(|o| *o)
        };
        false
    });
    outcome
}

/// Removes an operation run inline from the registry, however its future ends.
struct Forget<'a> {
    client: &'a Client,
    id: crate::store::OperationId,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.client.registry().remove(self.id);
    }
}

/// The outcome of an operation recorded earlier with the same request id (running it here if
/// nobody does).
async fn follow_existing(client: &Client, existing: CallerRecord) -> Option<Outcome> {
    if existing.state.is_terminal() {
        return mirror::record_of(&existing).outcome.map(|o| *o);
    }
    let mut record = match client.adopt(existing) {
        Ok((attached, _)) => attached.record,
        Err(e) => return Some(Err(e.into())),
    };
    if let Ok(shown) = record.wait_for(|r| r.outcome.is_some()).await {
        return shown.cloned_outcome();
    }
    record.borrow().cloned_outcome()
}

/// The error of an operation that could not be recorded: not started (nothing was sent), with the
/// store's error, which says whether the store may come back.
fn insert_error(e: &StoreError) -> CallError {
    CallError::NotStarted(format!(
        "cannot record the operation before its first attempt: {e}"
    ))
}

/// Records a new operation, and gives its driver; or follows the operation its request id
/// already recorded, or shows why it could not be recorded (then `None`: the task is done).
async fn begin_new(
    client: &Client,
    local: Local,
    new: Box<NewOperation>,
) -> Option<(Driver, tracing::Span)> {
    match insert(client, &new.record).await {
        Ok(InsertOutcome::Inserted) => Some(new.into_driver(client, local)),
        Ok(InsertOutcome::Exists(existing)) => {
            tracing::debug!(
                request_id = %existing.request_id,
                operation_id = %existing.id,
                "request id already recorded: following that operation"
            );
            // Dropped before the wait, so that the task does not keep room for it beside the
            // driver's.
            drop(new);
            Box::pin(forward(client, local, *existing)).await;
            None
        }
        Err(e) => {
            tracing::warn!(operation_id = %local.id, error = %e, "cannot record the operation");
            show_error(&local, insert_error(&e));
            None
        }
    }
}

/// Records a new operation before its first attempt; a client that keeps nothing records
/// nothing (its registry holds the operation, and found a running one with the same request id
/// when it was registered).
async fn insert(client: &Client, record: &CallerRecord) -> Result<InsertOutcome, StoreError> {
    if client.durability().keeps_nothing() {
        return Ok(InsertOutcome::Inserted);
    }
    let store = &client.durability().store;
    let mut tries = 0;
    loop {
        tries += 1;
        match store.insert(record).await {
            Err(e) if e.is_retryable() && tries < INSERT_TRIES => {
                tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(tries - 1)).await;
            }
            other => return other,
        }
    }
}

/// The operation's record as stored now. The one a task begins with may be out of date: read
/// before this task was registered, it misses a completion recorded in between (which woke no
/// task, or the one that has just ended), and driving the operation from it would wait for that
/// completion forever. Completions recorded from now on wake this task. If the store cannot be
/// read, the given record is driven (and its writes find out).
async fn current(client: &Client, record: Box<CallerRecord>) -> Box<CallerRecord> {
    match client.durability().store.get(record.id).await {
        Ok(Some(stored)) => Box::new(stored),
        Ok(None) => record,
        Err(e) => {
            tracing::warn!(operation_id = %record.id, error = %e, "cannot read the operation");
            record
        }
    }
}

/// The endpoint, spec and deadlines of a stored operation.
pub(crate) fn resume_parts(
    client: &Client,
    record: &CallerRecord,
) -> Result<(Arc<EndpointState>, Spec, Deadlines), AttachError> {
    let endpoint = client
        .endpoint_named(&record.endpoint)
        .ok_or_else(|| AttachError::UnknownEndpoint(record.endpoint.clone()))?
        .clone();
    let options = StoredOptions::from_json(&record.options)?;
    let spec = Spec {
        headers: options.headers.clone(),
        start: Some(Box::new(StartBody {
            input: record.input.clone(),
            links: options.links(),
        })),
        cancellation_type: options.cancellation_type(),
        retry: Arc::new(options.retry_policy()),
        callback_secret: record.callback_secret.clone(),
        trace: crate::observe::TraceContext::from_headers(&options.headers).map(Box::new),
    };
    let deadlines = Deadlines {
        schedule_to_close: record.deadlines.schedule_to_close.map(clock::instant_at),
        schedule_to_start: record.deadlines.schedule_to_start.map(clock::instant_at),
        start_to_close: options.start_to_close_timeout,
        started: record
            .started_at
            .filter(|_| record.state == OperationState::Started)
            .map(mirror::instant_of),
        request: options.request_timeout,
    };
    Ok((endpoint, spec, deadlines))
}

/// Shows an operation that cannot run here as failed (only to this process's handles; the store
/// is left as it is).
fn show_error(local: &Local, error: impl Into<CallError>) {
    let error = error.into();
    local.record.send_modify(|record| {
        if record.outcome.is_none() {
            record.outcome = Some(Box::new(Err(error)));
            record.info.set_state(OperationState::Failed);
            record.info.closed_at = Some(tokio::time::Instant::now());
        }
    });
}

/// Shows the stored record to the handles until it finishes, another replica driving it; returns
/// the record when this client claims it.
async fn follow(client: &Client, local: &mut Local) -> Option<Box<CallerRecord>> {
    let durability = client.durability();
    let store = durability.store.clone();
    let every = durability.poll_interval().unwrap_or(Duration::from_secs(1));
    loop {
        match store.get(local.id).await {
            Ok(Some(record)) => {
                show(local, &record);
                if record.state.is_terminal() {
                    return None;
                }
            }
            Ok(None) => {
                show_error(
                    local,
                    CallError::Invalid(format!("the record of operation {} is gone", local.id)),
                );
                return None;
            }
            Err(e) => {
                tracing::warn!(operation_id = %local.id, error = %e, "cannot read the operation")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            inbound = local.inbox.recv() => match inbound {
                Some(Inbound::Wake(Wake::Claimed(record))) => return Some(record),
                Some(Inbound::Wake(Wake::Completed(end))) => {
                    local.record.send_modify(|record| mirror::adopt_final(*end, record));
                    return None;
                }
                Some(Inbound::Wake(Wake::Check)) => {}
                Some(Inbound::Wake(Wake::Stop)) => return None,
                Some(Inbound::Command(Command::Cancel(reply))) => {
                    // The replica driving it carries it out.
                    let result = store
                        .request_cancel(local.id, clock::now())
                        .await
                        .map(|_| ())
                        .map_err(|e| CallError::Invalid(format!("cannot request the cancellation: {e}")));
                    let _ = reply.send(result);
                }
                // Every handle is gone: the replica driving it carries on.
                None => {}
            },
        }
    }
}

fn show(local: &Local, stored: &CallerRecord) {
    let shown = mirror::record_of(stored);
    local.record.send_modify(|record| {
        if record.outcome.is_none() {
            *record = shown;
        }
    });
}

/// A new operation's request id was recorded already: shows that operation to the new handles
/// (running it here if nobody else does) and passes their commands on.
async fn forward(client: &Client, mut local: Local, existing: CallerRecord) {
    if existing.state.is_terminal() {
        show(&local, &existing);
        return;
    }
    let target = match client.adopt(existing) {
        Ok((target, _)) => target,
        Err(e) => {
            show_error(&local, e);
            return;
        }
    };
    // Only the recorded operation runs here now; this task just passes things on.
    client.registry().remove(local.id);
    let mut shown = target.record;
    loop {
        let current: Record = shown.borrow_and_update().clone();
        local.record.send_replace(current);
        tokio::select! {
            changed = shown.changed() => {
                if changed.is_err() {
                    let last = shown.borrow().clone();
                    local.record.send_replace(last);
                    return;
                }
            }
            inbound = local.inbox.recv() => match inbound {
                Some(Inbound::Command(command)) => {
                    let _ = target.commands.send(Inbound::Command(command));
                }
                // No longer in the registry: nothing wakes it.
                Some(Inbound::Wake(_)) => {}
                None => return,
            },
        }
    }
}
