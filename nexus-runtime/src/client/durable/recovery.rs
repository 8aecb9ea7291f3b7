//! Recovery and the caretaker: resuming the store's unfinished operations when a client starts,
//! then (with replicas) renewing leases and claiming the operations of dead replicas, and purging
//! finished records past the retention.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::mirror;
use super::task::{self, Begin};
use crate::client::key::OperationKey;
use crate::client::pending::{Attached, Wake};
use crate::client::{AttachError, Client, Inner};
use crate::clock;
use crate::lease::{LeaseLoop, Passes};
use crate::machinery::store_retry;
use crate::store::{CallerRecord, OperationId, StoreError};

/// The longest pause between two tries of a failed recovery.
const MAX_RECOVERY_DELAY: Duration = Duration::from_secs(30);

impl Client {
    /// Resumes the operations the store holds unfinished, once per client, and returns how many
    /// this first pass resumed; later calls wait for that pass and return the same number.
    ///
    /// The client's caretaker runs it when the client starts (at `build()` inside a Tokio
    /// runtime, otherwise at the first `schedule`, `attach` or `recover`), so calling it is only
    /// needed to wait until recovery is done, or to see its error. Without replicas every
    /// unfinished operation is resumed; with replicas those this owner holds a lease on (from a
    /// previous run with the same [`owner_id`](crate::client::ClientBuilder::owner_id)) and those
    /// whose lease expired.
    ///
    /// A resumed operation goes on from its recorded state: one not yet started is attempted again
    /// with the same request id (after its recorded backoff), a started one waits for its
    /// completion, a requested cancellation is carried out, and every timeout counts from its
    /// recorded deadline. Operations on endpoints this client does not configure are left alone.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        self.ensure_caretaker();
        let resumed = self
            .inner
            .recovered
            .get_or_try_init(|| recovery_pass(self))
            .await?;
        Ok(*resumed)
    }

    /// Stops this client: no new operations; every operation's task stops where it is (its record
    /// stays in the store, for the next process or another replica); with replicas, its leases
    /// are released so others take its operations over at once. Handles then see their driver
    /// stop (`result()` fails with [`CallError::Invalid`](crate::CallError::Invalid)).
    pub async fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        self.inner.stop.cancel();
        self.inner.registry.abort_all();
        let durability = &self.inner.durability;
        if durability.replicas.is_some()
            && let Err(e) = durability.store.release_all(&durability.owner).await
        {
            tracing::warn!(error = %e, "cannot release the leases at shutdown");
        }
    }

    /// Starts the caretaker, once, if a Tokio runtime is at hand.
    pub(crate) fn ensure_caretaker(&self) {
        if self.inner.caretaker_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.caretaker_started.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(caretaker(
            Arc::downgrade(&self.inner),
            self.inner.stop.clone(),
        ));
    }

    /// Runs a stored unfinished operation here (or follows it, when another replica holds its
    /// lease), unless a task of this process runs it already. Returns what a handle needs, and
    /// whether a task was started.
    pub(crate) fn adopt(&self, record: CallerRecord) -> Result<(Attached, bool), AttachError> {
        if let Some(attached) = self.registry().attach(record.id) {
            return Ok((attached, false));
        }
        if record.state.is_terminal() {
            let key = record.request_key();
            return Ok((Attached::finished(mirror::record_of(&record), key), false));
        }
        if self.is_shut_down() {
            return Err(AttachError::ShutDown);
        }
        // Fails early for an unknown endpoint or unreadable options.
        let (endpoint, _, _) = task::resume_parts(self, &record)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AttachError::Store(StoreError::Invalid(
                "operations are driven by Tokio tasks: call from inside a Tokio runtime".into(),
            ))
        })?;
        let durability = self.durability();
        let drive = durability.replicas.is_none()
            || record
                .lease
                .as_ref()
                .is_some_and(|l| l.owner == durability.owner);
        let key = OperationKey::of_stored(endpoint.name.clone(), &record);
        match self.registry().register(
            record.id,
            Arc::new(key),
            mirror::record_of(&record),
            record.callback_secret.clone(),
        ) {
            Err(attached) => Ok((attached, false)),
            Ok((local, attached)) => {
                let begin = if drive {
                    Begin::Resume(Box::new(record))
                } else {
                    Begin::Follow
                };
                self.spawn_task(&runtime, local, begin);
                Ok((attached, true))
            }
        }
    }
}

/// The first recovery pass.
async fn recovery_pass(client: &Client) -> Result<usize, StoreError> {
    let durability = client.durability();
    let store = &durability.store;
    let records = match &durability.replicas {
        None => store.list_unfinished().await?,
        Some(replicas) => {
            let now = clock::now();
            let mine = store
                .renew(&durability.owner, now, replicas.lease_duration())
                .await?;
            let mut records = Vec::with_capacity(mine.len());
            for id in mine {
                records.extend(store.get(id).await?);
            }
            records.extend(
                store
                    .claim(
                        &durability.owner,
                        now,
                        replicas.lease_duration(),
                        replicas.batch(),
                    )
                    .await?,
            );
            records
        }
    };
    let mut resumed = 0;
    for record in records {
        if adopt_or_release(client, record).await {
            resumed += 1;
        }
    }
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished operations from the store");
    }
    Ok(resumed)
}

/// Adopts an operation this client holds (or may drive); returns whether a task was started.
/// With replicas, one this client cannot drive (its endpoint is not configured here) is released.
async fn adopt_or_release(client: &Client, record: CallerRecord) -> bool {
    let id = record.id;
    match client.adopt(record) {
        Ok((_, started)) => started,
        Err(e) => {
            tracing::warn!(operation_id = %id, error = %e, "cannot resume an operation");
            let durability = client.durability();
            if durability.replicas.is_some() {
                let _ = durability.store.release(&durability.owner, &[id]).await;
            }
            false
        }
    }
}

/// The passes of the caretaker's lease loop.
#[derive(Clone, Copy)]
enum Pass {
    Purge,
    Renew,
    Claim,
}

/// The client's background work, a [`LeaseLoop`]: recovery, then purges and (with replicas)
/// lease renewals and claims. It holds the client weakly: it stops when the client (and every
/// operation task, which holds it) is gone, or at shutdown.
async fn caretaker(inner: Weak<Inner>, stop: CancellationToken) {
    let caretaker = Caretaker { inner };
    let lease = {
        let Some(client) = caretaker.client() else {
            return;
        };
        let durability = client.durability();
        let lease = LeaseLoop::new(stop, store_retry(MAX_RECOVERY_DELAY))
            .every(Pass::Purge, durability.purge_interval);
        match durability.replicas.as_ref() {
            Some(replicas) => lease
                .every(Pass::Renew, replicas.renew_every())
                .every(Pass::Claim, replicas.claim_every()),
            None => lease,
        }
    };
    lease.run("recovery failed; trying again", caretaker).await;
}

/// The caretaker's passes, on the client held weakly.
struct Caretaker {
    inner: Weak<Inner>,
}

impl Caretaker {
    fn client(&self) -> Option<Client> {
        self.inner.upgrade().map(|inner| Client { inner })
    }
}

impl Passes<Pass> for Caretaker {
    type Error = StoreError;

    async fn start_up(&mut self) -> Result<ControlFlow<()>, StoreError> {
        let Some(client) = self.client() else {
            return Ok(ControlFlow::Break(()));
        };
        client.recover().await.map(|_| ControlFlow::Continue(()))
    }

    async fn pass(&mut self, pass: Pass) -> ControlFlow<()> {
        let Some(client) = self.client() else {
            return ControlFlow::Break(());
        };
        let result = match pass {
            Pass::Purge => purge_pass(&client).await,
            Pass::Renew => renew_pass(&client).await,
            Pass::Claim => claim_pass(&client).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "caretaker: store call failed");
        }
        ControlFlow::Continue(())
    }
}

async fn purge_pass(client: &Client) -> Result<(), StoreError> {
    let durability = client.durability();
    let Some(before) = clock::now().checked_sub(durability.retention) else {
        return Ok(());
    };
    let purged = durability.store.purge_finished(before).await?;
    if purged > 0 {
        tracing::debug!(purged, "purged finished operations past the retention");
    }
    Ok(())
}

/// Renews this owner's leases. An operation run here but no longer leased finished elsewhere or
/// was taken over: its task reads it again. One leased but not run here (a previous run with the
/// same owner id) is resumed.
async fn renew_pass(client: &Client) -> Result<(), StoreError> {
    let durability = client.durability();
    let Some(replicas) = &durability.replicas else {
        return Ok(());
    };
    let held: HashSet<OperationId> = durability
        .store
        .renew(&durability.owner, clock::now(), replicas.lease_duration())
        .await?
        .into_iter()
        .collect();
    client.registry().check_all_except(&held);
    for id in held {
        if client.registry().attach(id).is_none()
            && let Some(record) = durability.store.get(id).await?
            && !record.state.is_terminal()
        {
            adopt_or_release(client, record).await;
        }
    }
    Ok(())
}

/// Claims operations whose lease expired and drives them.
async fn claim_pass(client: &Client) -> Result<(), StoreError> {
    let durability = client.durability();
    let Some(replicas) = &durability.replicas else {
        return Ok(());
    };
    let claimed = durability
        .store
        .claim(
            &durability.owner,
            clock::now(),
            replicas.lease_duration(),
            replicas.batch(),
        )
        .await?;
    for record in claimed {
        tracing::info!(operation_id = %record.id, "claimed an operation whose lease expired");
        if !client
            .registry()
            .wake(record.id, Wake::Claimed(Box::new(record.clone())))
        {
            adopt_or_release(client, record).await;
        }
    }
    Ok(())
}
