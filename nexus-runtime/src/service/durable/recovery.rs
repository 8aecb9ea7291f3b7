//! The keeper: at start-up it takes over what this owner left running and resumes or fails it;
//! then it renews this owner's leases, watches for cancel requests recorded by other replicas,
//! takes over the operations of owners whose leases expired, and deletes records past their
//! retention.

use std::ops::ControlFlow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Durable;
use crate::clock;
use crate::completion::{Callback, Completion};
use crate::error::{OperationError, StartError};
use crate::lease::{LeaseLoop, Passes};
use crate::machinery::store_retry;
use crate::operation::{ContextParts, RequestCancel};
use crate::service::dispatcher::{Dispatcher, Inner};
use crate::service::handler::RawStart;
use crate::service::invoke::{Answered, Invocation, invoke};
use crate::service::work::{Launch, Reserved};
use crate::store::{AsyncOperationRecord, StoreError};

/// How many operations one takeover claims at a time.
const CLAIM_BATCH: usize = 32;

/// How often records past their retention are deleted.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the keeper of `dispatcher`; it ends when the dispatcher stops or is dropped.
pub(crate) fn spawn_keeper(dispatcher: &Dispatcher, durable: Arc<Durable>) {
    let weak = Arc::downgrade(&dispatcher.inner);
    tokio::spawn(keep(weak, durable));
}

fn upgrade(weak: &Weak<Inner>) -> Option<Dispatcher> {
    weak.upgrade().map(|inner| Dispatcher { inner })
}

/// The passes of the keeper's lease loop.
#[derive(Clone, Copy)]
enum Pass {
    Renew,
    Purge,
    TakeOver,
}

/// The keeper, a [`LeaseLoop`]: start-up recovery, then lease renewal (every third of a lease),
/// retention (at once, then hourly) and takeover.
async fn keep(weak: Weak<Inner>, durable: Arc<Durable>) {
    LeaseLoop::new(durable.stop.clone(), store_retry(Duration::from_secs(10)))
        .every(Pass::Renew, durable.options.lease / 3)
        .now_and_every(Pass::Purge, RETENTION_INTERVAL)
        .every(Pass::TakeOver, durable.options.takeover_interval)
        .run(
            "cannot recover unfinished operations yet; retrying",
            Keeper { weak, durable },
        )
        .await;
}

/// The keeper's passes, on the dispatcher held weakly.
struct Keeper {
    weak: Weak<Inner>,
    durable: Arc<Durable>,
}

impl Passes<Pass> for Keeper {
    type Error = StoreError;

    async fn start_up(&mut self) -> Result<ControlFlow<()>, StoreError> {
        start_up(&self.weak, &self.durable)
            .await
            .map(|()| ControlFlow::Continue(()))
    }

    async fn pass(&mut self, pass: Pass) -> ControlFlow<()> {
        let (weak, durable) = (&self.weak, &self.durable);
        match pass {
            Pass::Renew => renew(weak, durable).await,
            Pass::Purge => purge(durable).await,
            Pass::TakeOver => {
                if let Err(e) = take_over(weak, durable).await {
                    tracing::warn!(error = %e, "cannot look for operations to take over");
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Takes over what this owner left running (a restart), then what nobody holds.
async fn start_up(weak: &Weak<Inner>, durable: &Durable) -> Result<(), StoreError> {
    let owner = &durable.options.owner;
    durable
        .handler
        .renew_async(owner, clock::now(), durable.options.lease)
        .await?;
    for token in durable.handler.leased_async(owner).await? {
        let Some(dispatcher) = upgrade(weak) else {
            return Ok(());
        };
        if dispatcher.inner.running.contains(&token) {
            continue;
        }
        if let Some(record) = durable.handler.get_async(&token).await? {
            recover(&dispatcher, record);
        }
    }
    take_over(weak, durable).await
}

/// Claims the operations whose lease is free or expired, and resumes or fails them.
async fn take_over(weak: &Weak<Inner>, durable: &Durable) -> Result<(), StoreError> {
    loop {
        let claimed = durable
            .handler
            .claim_async(
                &durable.options.owner,
                clock::now(),
                durable.options.lease,
                CLAIM_BATCH,
            )
            .await?;
        let Some(dispatcher) = upgrade(weak) else {
            return Ok(());
        };
        let full = claimed.len() >= CLAIM_BATCH;
        for record in claimed {
            if !dispatcher.inner.running.contains(&record.token) {
                tracing::info!(token = %record.token, previous = ?record.lease, "taking over an operation");
            }
            recover(&dispatcher, record);
        }
        if !full {
            return Ok(());
        }
    }
}

/// Deletes what is past its retention.
async fn purge(durable: &Durable) {
    let Some(retention) = durable.options.retention else {
        return;
    };
    let Some(before) = clock::now().checked_sub(retention) else {
        return;
    };
    match durable.handler.purge_handled(before).await {
        Ok(purged) if purged.starts + purged.operations > 0 => {
            tracing::debug!(
                starts = purged.starts,
                operations = purged.operations,
                "purged old records"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot purge old records"),
    }
    if let Err(e) = durable.outbox.purge_deliveries(before).await {
        tracing::warn!(error = %e, "cannot purge old deliveries");
    }
}

/// Renews this owner's leases, and signals cancel requests recorded elsewhere.
async fn renew(weak: &Weak<Inner>, durable: &Durable) {
    let owner = &durable.options.owner;
    let Some(ended_before) = upgrade(weak).map(|d| d.inner.running.counts().1) else {
        return;
    };
    let renewed = durable
        .handler
        .renew_async(owner, clock::now(), durable.options.lease)
        .await;
    let Some(dispatcher) = upgrade(weak) else {
        return;
    };
    let (running, ended) = dispatcher.inner.running.counts();
    match renewed {
        Ok(renewed) if leased_elsewhere(renewed, running, ended - ended_before) => {
            match durable.handler.leased_async(owner).await {
                Ok(tokens) => warn_not_running(&dispatcher, owner, &tokens),
                Err(e) => tracing::warn!(error = %e, "cannot list the leases of this owner"),
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot renew the leases of running operations"),
    }
    // A cancel request that reached another replica (or arrived before a resume) is recorded:
    // one query for the operations this owner holds, however many run.
    match durable.handler.cancel_requested_async(owner).await {
        Ok(tokens) => {
            for token in tokens {
                if let Some(signal) = dispatcher.inner.running.signal(&token) {
                    signal.cancel();
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot check for cancel requests"),
    }
}

/// Whether `renewed` leases are more than the operations running here could hold: then some
/// operation leased to this owner runs elsewhere (another process with the same owner id) or
/// nowhere, and the leases are worth listing.
///
/// Every operation leased here runs here: it is in the running table before it is recorded, and
/// stays there until it is recorded as finished. So the leases the renewal counted are at most
/// the operations that ran here at that moment: those running now (`running`), and those that
/// ended since a moment before the renewal (`ended_since`). Comparing with `running` alone took
/// operations that ended meanwhile for operations running elsewhere, and listed every lease of
/// the owner (100,000 at 100,000 pending) to find none.
fn leased_elsewhere(renewed: u64, running: usize, ended_since: u64) -> bool {
    renewed > (running as u64).saturating_add(ended_since)
}

/// Warns of each operation leased to `owner` that is not running here.
fn warn_not_running(dispatcher: &Dispatcher, owner: &str, tokens: &[String]) {
    for token in tokens {
        if !dispatcher.inner.running.contains(token) {
            tracing::warn!(
                %token,
                %owner,
                "an operation leased to this owner is not running here: does another process \
                 use the same owner id?"
            );
        }
    }
}

/// Resumes (if declared resumable) or fails an unfinished operation that no process runs,
/// unless it is running here already.
fn recover(dispatcher: &Dispatcher, record: AsyncOperationRecord) {
    if record.state.is_terminal() {
        return;
    }
    let token = record.token.as_str().into();
    let reserved = Reserved::new(dispatcher, token, &record.service, &record.operation);
    let running = reserved.running(&record.principal, record.input.data.len());
    let inserted = dispatcher
        .inner
        .running
        .insert(reserved.token.clone(), running);
    if !inserted {
        return;
    }
    if record.cancel_requested_at.is_some() {
        reserved.cancel.cancel();
    }
    let dispatcher = dispatcher.clone();
    tokio::spawn(resume_or_fail(dispatcher, record, reserved));
}

async fn resume_or_fail(dispatcher: Dispatcher, record: AsyncOperationRecord, reserved: Reserved) {
    let callback = record.callback.clone().map(|c| Callback::Url {
        url: c.url,
        headers: c.headers,
    });
    let name = format!("{}/{}", record.service, record.operation);
    let error = if !record.resumable {
        if record.cancel_requested_at.is_some() {
            OperationError::canceled(format!(
                "operation `{name}` was canceled: the handler restarted after the cancel \
                 request, before its work ended"
            ))
        } else {
            OperationError::failed(format!(
                "the handler restarted while operation `{name}` was running, and the \
                 operation is not resumable: its work was lost"
            ))
        }
    } else {
        match resume(&dispatcher, &record, callback.clone(), reserved).await {
            Ok(()) => return,
            Err(e) => OperationError::failed(format!(
                "the handler restarted while operation `{name}` was running, and resuming \
                 it failed: {e}"
            )),
        }
    };
    tracing::warn!(token = %record.token, operation = %name, "{}", error.message);
    let completion = Completion {
        token: record.token.clone(),
        outcome: Err(error),
        links: Vec::new(),
        start_time: Some(record.started_at),
        close_time: Some(clock::now()),
    };
    dispatcher.finish_work(callback, completion).await;
}

/// Calls the operation method again (`ctx.resumed()` true) and runs what it answers under
/// the recorded token.
async fn resume(
    dispatcher: &Dispatcher,
    record: &AsyncOperationRecord,
    callback: Option<Callback>,
    reserved: Reserved,
) -> Result<(), String> {
    let handler = dispatcher
        .inner
        .services
        .get(&record.service)
        .cloned()
        .ok_or_else(|| format!("this handler does not serve `{}`", record.service))?;
    let operation_deadline = record.deadline.map(clock::instant_at);
    let invocation = Invocation {
        parts: ContextParts {
            service: record.service.clone(),
            operation: record.operation.clone(),
            request_id: record.request_id.clone(),
            principal: record.principal.clone(),
            headers: record.headers.clone(),
            links: record.links.clone(),
            deadline: None,
            operation_deadline,
            cancel: RequestCancel::default(),
            has_callback: true,
            resumed: true,
            response_links: Default::default(),
        },
        input: record.input.clone(),
        request_deadline: None,
    };
    tracing::info!(token = %record.token, operation = %record.operation, "resuming an operation");
    let finished = |outcome| Completion {
        token: record.token.clone(),
        outcome,
        links: Vec::new(),
        start_time: Some(record.started_at),
        close_time: Some(clock::now()),
    };
    match invoke(&handler, invocation, dispatcher.payload_codec()).await {
        Ok(Answered {
            raw: RawStart::Async(op),
            ..
        }) => {
            if let Some(chosen) = op.token.as_deref().filter(|t| *t != record.token) {
                tracing::warn!(
                    token = %record.token,
                    %chosen,
                    "the resumed operation chose another token; it keeps its own"
                );
            }
            dispatcher.spawn_work(
                op,
                Launch {
                    reserved,
                    request_id: record.request_id.clone(),
                    principal: record.principal.clone(),
                    headers: record.headers.clone(),
                    deadline: operation_deadline,
                    callback,
                    resumed: true,
                    start_time: record.started_at,
                },
            );
        }
        Ok(Answered {
            raw: RawStart::Sync(output),
            links,
            ..
        }) => {
            let mut completion = finished(Ok(output));
            completion.links = links;
            dispatcher.finish_work(callback, completion).await;
        }
        Err(StartError::Operation(e)) => dispatcher.finish_work(callback, finished(Err(e))).await,
        Err(StartError::Handler(e)) => return Err(e.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_listed_only_when_more_than_could_run_here() {
        // As many leases as operations running: nothing to look for.
        assert!(!leased_elsewhere(10, 10, 0));
        // Three operations ended during the renewal: their leases were counted.
        assert!(!leased_elsewhere(10, 7, 3));
        // One lease more than ran here at any moment of the renewal.
        assert!(leased_elsewhere(11, 7, 3));
        assert!(leased_elsewhere(5, 0, 0));
        assert!(!leased_elsewhere(0, 0, u64::MAX));
    }
}
