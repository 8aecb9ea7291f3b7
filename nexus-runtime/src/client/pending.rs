//! The operations this client runs in this process, by operation id (which is also their callback
//! id), and the inbox where their completions arrive.
//!
//! An entry exists while the operation's task runs (it drives the operation, or follows one
//! another replica drives). Handles subscribe to its record and send it commands; the inbox and
//! the caretaker wake it.
//!
//! A completion is recorded in the store *first* ([`Inbox::deliver`]); only then is the task
//! woken, with the final record. So a completion is never acknowledged before it is durable, and
//! one that arrives while no task runs the operation (after a crash, or at another replica) is
//! found in the store by whoever resumes it.
//!
//! The in-process callback of an operation ([`PendingSink`]) carries the way to its task, so a
//! completion from an in-process handler, once recorded, wakes the task without a look-up in the
//! registry (the registry is the fallback, for a task that was replaced).
//!
//! A client that keeps nothing once an operation ends (built without a store or a retention) has
//! no store to record in: its registry is where its operations live. The registry then also
//! finds a running operation by its request key (a request id already running is followed, not
//! started again), and checks and records completions itself ([`Registry::complete`]), with the
//! same answers a store gives.
//!
//! A completion that comes over the network ([`Inbox::deliver`], from the callback receiver) must
//! present its operation's callback secret (the one its callback URL carries, kept in the store's
//! record and in the registry entry while the operation runs here, so that the common case reads
//! nothing). The secret is checked before anything else, in constant time; a missing or wrong one
//! gets the answer an unknown operation gets, and nothing is recorded. The in-process callback
//! ([`PendingSink`]) is handed to the handler directly and needs none.

use std::collections::{HashMap, HashSet};

use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::task::AbortHandle;

use super::driver::{Command, Record};
use super::durable::mirror::Ended;
use super::key::OperationKey;
use super::queue::{self, Receiver, Sender, WeakSender};
use super::record_cell;
use crate::clock;
use crate::codec::Content;
use crate::completion::{Completion, CompletionSink};
use crate::error::HandlerError;
use crate::id::IdMap;
use crate::security::CallbackSecret;
use crate::store::{CallerRecord, CallerStore, CompletionOutcome, OperationId, RequestKey};

/// Why a task is woken.
#[derive(Debug)]
pub(crate) enum Wake {
    /// Its completion was recorded: how it ended.
    Completed(Box<Ended>),
    /// This client claimed it (replicas): drive it from this record.
    Claimed(Box<CallerRecord>),
    /// Its record may have changed: read it again.
    Check,
    /// The client is shutting down: stop where it is (for a driver run inline, which has no task
    /// to abort).
    Stop,
}

/// What reaches an operation's task through its one queue: its handles' commands, and the wakes
/// of the inbox, the caretaker and the registry.
pub(crate) enum Inbound {
    Command(Command),
    Wake(Wake),
}

/// How the registry holds an operation's queue: strongly when operations outlive their handles (a
/// durable client), weakly otherwise (dropping every handle abandons the operation). Either way
/// its wakes are posted.
enum Commands {
    Strong(Sender<Inbound>),
    Weak(WeakSender<Inbound>),
}

impl Commands {
    /// Wakes the task; `false` if it is gone.
    fn wake(&self, wake: Wake) -> bool {
        let wake = Inbound::Wake(wake);
        match self {
            Self::Strong(tx) => tx.send(wake).is_ok(),
            Self::Weak(weak) => weak.post(wake).is_ok(),
        }
    }
}

struct Entry {
    key: Arc<OperationKey>,
    /// The task's own sender: handles subscribe to it when they attach. The registry holds no
    /// receiver, so a driver with no handle publishes without waking anyone.
    record: record_cell::Sender<Record>,
    commands: Commands,
    abort: Option<AbortHandle>,
    /// The completion accepted for it (ephemeral registries only): a second one is refused, the
    /// same one again acknowledged.
    completed: Option<Box<CallerRecord>>,
    /// The secret its callback URL carries (as its record keeps it).
    secret: Option<CallbackSecret>,
}

/// What a handle needs of an operation.
pub(crate) struct Attached {
    pub key: Arc<OperationKey>,
    pub record: record_cell::Receiver<Record>,
    pub commands: Sender<Inbound>,
}

impl Attached {
    /// A finished operation no task runs: its record, and commands that go nowhere.
    pub fn finished(record: Record, key: RequestKey) -> Self {
        Self {
            key: Arc::new(key.into()),
            record: record_cell::channel(record).1,
            commands: Sender::closed(),
        }
    }
}

/// What an operation's task owns.
pub(crate) struct Local {
    pub id: OperationId,
    /// Shared with the registry entry and the handles.
    pub key: Arc<OperationKey>,
    pub record: record_cell::Sender<Record>,
    /// Its handles' commands and its wakes.
    pub inbox: Receiver<Inbound>,
    /// The way to this task, for its in-process callback.
    pub waker: WeakSender<Inbound>,
}

/// The local operations, by id (and by request key, for an ephemeral registry).
pub(crate) struct Registry {
    entries: Mutex<Entries>,
    persistent: bool,
    ephemeral: bool,
}

#[derive(Default)]
struct Entries {
    by_id: IdMap<Entry>,
    /// The running operations by request key: only in an ephemeral registry (a store finds them
    /// otherwise).
    by_key: HashMap<Arc<OperationKey>, OperationId, foldhash::fast::RandomState>,
}

impl Entries {
    fn remove(&mut self, id: OperationId) -> Option<Entry> {
        let entry = self.by_id.remove(&id)?;
        if self.by_key.get(&entry.key) == Some(&id) {
            self.by_key.remove(&entry.key);
        }
        Some(entry)
    }
}

impl Registry {
    /// A registry; `persistent` when operations outlive their handles (a configured store),
    /// `ephemeral` when operations live only here (no store keeps them, see the module docs).
    pub fn new(persistent: bool, ephemeral: bool) -> Self {
        Self {
            entries: Mutex::default(),
            persistent,
            ephemeral,
        }
    }

    /// Registers operation `id`, showing `initial`, unless it runs here already (or, in an
    /// ephemeral registry, an operation with the same request key does): then `Err` with what a
    /// handle needs of the running one. `secret` is the one its callback URL carries, to check
    /// completions against.
    pub fn register(
        &self,
        id: OperationId,
        key: Arc<OperationKey>,
        initial: Record,
        secret: Option<CallbackSecret>,
    ) -> Result<(Local, Attached), Attached> {
        let mut entries = self.lock();
        if let Some(entry) = entries.by_id.get(&id) {
            return Err(attached(entry));
        }
        if self.ephemeral
            && let Some(entry) = entries
                .by_key
                .get(&key)
                .and_then(|id| entries.by_id.get(id))
        {
            return Err(attached(entry));
        }
        let (record_tx, record_rx) = record_cell::channel(initial);
        let (commands_tx, inbox) = queue::channel();
        let waker = commands_tx.downgrade();
        let commands = if self.persistent {
            Commands::Strong(commands_tx.clone())
        } else {
            Commands::Weak(commands_tx.downgrade())
        };
        if self.ephemeral {
            entries.by_key.insert(key.clone(), id);
        }
        entries.by_id.insert(
            id,
            Entry {
                key: key.clone(),
                record: record_tx.clone(),
                commands,
                abort: None,
                completed: None,
                secret,
            },
        );
        Ok((
            Local {
                id,
                key: key.clone(),
                record: record_tx,
                inbox,
                waker,
            },
            Attached {
                key,
                record: record_rx,
                commands: commands_tx,
            },
        ))
    }

    /// What a handle needs of local operation `id`, if it runs here.
    pub fn attach(&self, id: OperationId) -> Option<Attached> {
        self.lock().by_id.get(&id).map(attached)
    }

    /// Remembers how to stop the task of `id` (for [`Registry::abort_all`]).
    pub fn set_abort(&self, id: OperationId, abort: AbortHandle) {
        if let Some(entry) = self.lock().by_id.get_mut(&id) {
            entry.abort = Some(abort);
        }
    }

    /// Wakes the task of `id`; `false` if it does not run here.
    pub fn wake(&self, id: OperationId, wake: Wake) -> bool {
        self.lock()
            .by_id
            .get(&id)
            .is_some_and(|entry| entry.commands.wake(wake))
    }

    /// Asks every local operation not in `held` to read its record again.
    pub fn check_all_except(&self, held: &HashSet<OperationId>) {
        for (id, entry) in self.lock().by_id.iter() {
            if !held.contains(id) {
                entry.commands.wake(Wake::Check);
            }
        }
    }

    /// Forgets `id` (its task ended).
    pub fn remove(&self, id: OperationId) {
        self.lock().remove(id);
    }

    /// Checks and records the completion of operation `id` in an ephemeral registry, where
    /// nothing else keeps it, and wakes its task. The answers are a store's (see
    /// [`Inbox::deliver`]): NOT_FOUND for an operation that does not run here (unknown, or it
    /// ended and was forgotten) or that ended otherwise; the same completion again is
    /// acknowledged; BAD_REQUEST for a token other than the start response gave. A completion
    /// from a callback request without the operation's secret is refused first, as for an
    /// unknown operation.
    pub fn complete(
        &self,
        id: OperationId,
        origin: Origin<'_>,
        completion: &Completion,
    ) -> Result<(), HandlerError> {
        let mut entries = self.lock();
        let Some(entry) = entries
            .by_id
            .get_mut(&id)
            .filter(|entry| origin.admits(entry.secret.as_ref(), false))
        else {
            return Err(refusal(id, completion, CompletionOutcome::UnknownOperation));
        };
        if let Some(done) = &entry.completed {
            if done.ended_with(completion) {
                tracing::debug!(operation_id = %id, "a completion received again");
                return Ok(());
            }
            let finished = CompletionOutcome::AlreadyFinished(done.state);
            return Err(refusal(id, completion, finished));
        }
        let (token, ended) = {
            let shown = entry.record.borrow();
            let ended = shown.outcome.is_some().then(|| shown.info.state);
            (shown.info.token.clone(), ended)
        };
        if let Some(state) = ended {
            return Err(refusal(
                id,
                completion,
                CompletionOutcome::AlreadyFinished(state),
            ));
        }
        let now = clock::now();
        let mut record = CallerRecord::new(
            id,
            entry.key.to_request_key(),
            Content::empty(),
            serde_json::Value::Null,
            now,
        );
        record.token = token;
        if let Some(expected) = record.token_contradicted_by(completion) {
            let expected = expected.to_owned();
            let mismatch = CompletionOutcome::TokenMismatch { expected };
            return Err(refusal(id, completion, mismatch));
        }
        record.apply_completion(completion, now);
        let end = Ended::of_record(&record);
        entry.completed = Some(Box::new(record));
        // The task reads its queue until it ends; if it just ended, the registry entry is
        // removed next and the operation was over anyway.
        entry.commands.wake(Wake::Completed(Box::new(end)));
        Ok(())
    }

    /// Whether a completion from `origin` may complete operation `id`, if it runs here (`None`
    /// if it does not: its record decides).
    pub fn admits(
        &self,
        id: OperationId,
        origin: Origin<'_>,
        accept_legacy_unsigned: bool,
    ) -> Option<bool> {
        self.lock()
            .by_id
            .get(&id)
            .map(|entry| origin.admits(entry.secret.as_ref(), accept_legacy_unsigned))
    }

    /// Stops every task (and every driver run inline) and forgets every operation.
    pub fn abort_all(&self) {
        let mut entries = self.lock();
        entries.by_key.clear();
        for (_, entry) in entries.by_id.drain() {
            match entry.abort {
                Some(abort) => abort.abort(),
                None => {
                    entry.commands.wake(Wake::Stop);
                }
            }
        }
    }

    /// What every local operation shows now: its key and its published record (for listings).
    pub fn snapshot(&self) -> Vec<(Arc<OperationKey>, Record)> {
        self.lock()
            .by_id
            .values()
            .map(|entry| (entry.key.clone(), entry.record.borrow().clone()))
            .collect()
    }

    /// What local operation `id` shows now, if it runs here.
    pub fn shown(&self, id: OperationId) -> Option<Record> {
        self.lock()
            .by_id
            .get(&id)
            .map(|entry| entry.record.borrow().clone())
    }

    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn attached(entry: &Entry) -> Attached {
    let commands = match &entry.commands {
        Commands::Strong(tx) => Some(tx.clone()),
        Commands::Weak(weak) => weak.upgrade(),
    };
    Attached {
        key: entry.key.clone(),
        record: entry.record.subscribe(),
        // Every handle was dropped and the operation is being abandoned: commands go nowhere.
        commands: commands.unwrap_or_else(Sender::closed),
    }
}

/// Where completions arrive: recorded in the store, then handed to the local task (or, for an
/// ephemeral registry, checked and recorded by the registry).
pub(crate) struct Inbox {
    pub store: Arc<dyn CallerStore>,
    pub registry: Arc<Registry>,
    /// Whether a record without a secret (made before secrets existed) takes completions without
    /// one.
    pub accept_legacy_unsigned: bool,
}

/// Where a completion comes from, for the secret check.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin<'a> {
    /// The operation's in-process callback, handed to its handler directly: nothing to check.
    InProcess,
    /// A callback request, with the secret its URL's query presented, if any.
    Callback(Option<&'a str>),
}

impl Origin<'_> {
    /// Whether a completion from here may complete an operation whose callback carries
    /// `expected` (`None`: a record made before secrets existed, admitted only when
    /// `accept_legacy_unsigned`). The comparison is in constant time.
    fn admits(self, expected: Option<&CallbackSecret>, accept_legacy_unsigned: bool) -> bool {
        match (self, expected) {
            (Self::InProcess, _) => true,
            (Self::Callback(Some(presented)), Some(expected)) => expected.matches(presented),
            (Self::Callback(None), Some(_)) => false,
            (Self::Callback(_), None) => accept_legacy_unsigned,
        }
    }
}

impl Inbox {
    /// Records the completion for callback id `callback_id`, received with callback secret
    /// `secret`, and wakes its task. Acknowledges the same completion received again (the
    /// operation ended with it); refuses an unknown id, a missing or wrong secret (the same
    /// answer, see the module docs) or an operation already finished otherwise (NOT_FOUND) and a
    /// token that contradicts the start response (BAD_REQUEST); a store failure is UNAVAILABLE
    /// (retryable), so the completion is sent again rather than lost.
    pub async fn deliver(
        &self,
        callback_id: &str,
        secret: Option<&str>,
        completion: Completion,
    ) -> Result<(), HandlerError> {
        let id = OperationId::parse_str(callback_id).map_err(|_| {
            HandlerError::not_found(format!(
                "no operation has callback id `{callback_id}` (not an operation id)"
            ))
        })?;
        let origin = Origin::Callback(secret);
        if self.registry.ephemeral {
            return self.registry.complete(id, origin, &completion);
        }
        let legacy = self.accept_legacy_unsigned;
        // `None`: no such operation; `Some(false)`: the secret is missing or wrong.
        let admitted = match self.registry.admits(id, origin, legacy) {
            Some(admitted) => Some(admitted),
            // Not running here (after a restart, or driven by another replica): its record says.
            None => self
                .store
                .get(id)
                .await
                .map_err(|e| {
                    tracing::warn!(operation_id = %id, error = %e, "cannot read an operation's record");
                    HandlerError::unavailable(format!("cannot check the completion: {e}"))
                })?
                .map(|record| origin.admits(record.callback_secret.as_ref(), legacy)),
        };
        match admitted {
            Some(true) => self.deliver_to(id, completion).await,
            Some(false) => {
                tracing::warn!(
                    operation_id = %id,
                    "a completion without its operation's callback secret refused"
                );
                Err(refusal(
                    id,
                    &completion,
                    CompletionOutcome::UnknownOperation,
                ))
            }
            None => Err(refusal(
                id,
                &completion,
                CompletionOutcome::UnknownOperation,
            )),
        }
    }

    /// Records `completion` for operation `id` (its secret checked already) and wakes its task.
    /// Both happen in a task of their own: when the request that brought the completion goes
    /// away (its sender died), this future is dropped, but a completion the store recorded still
    /// wakes the task waiting for it.
    async fn deliver_to(
        &self,
        id: OperationId,
        completion: Completion,
    ) -> Result<(), HandlerError> {
        self.deliver_with(id, completion, None).await
    }

    /// Records the completion of operation `id`, then wakes its task: through `waker` (the task's
    /// own queue, carried by its in-process callback) if given and still there, otherwise
    /// through the registry. Both happen in a task of their own (see [`Inbox::deliver_to`]).
    async fn deliver_with(
        &self,
        id: OperationId,
        completion: Completion,
        waker: Option<WeakSender<Inbound>>,
    ) -> Result<(), HandlerError> {
        if self.registry.ephemeral {
            // Nothing to wait for: checked, recorded and handed over under the registry's lock.
            return self.registry.complete(id, Origin::InProcess, &completion);
        }
        let (store, registry) = (self.store.clone(), self.registry.clone());
        tokio::spawn(async move {
            record_and_wake(&*store, &registry, id, completion, waker.as_ref()).await
        })
        .await
        .unwrap_or_else(|e| {
            Err(HandlerError::internal(format!(
                "recording the completion failed: {e}"
            )))
        })
    }
}

async fn record_and_wake(
    store: &dyn CallerStore,
    registry: &Registry,
    id: OperationId,
    completion: Completion,
    waker: Option<&WeakSender<Inbound>>,
) -> Result<(), HandlerError> {
    let now = clock::now();
    let outcome = store
        .record_completion(id, &completion, now)
        .await
        .map_err(|e| {
            tracing::warn!(operation_id = %id, error = %e, "cannot record a completion");
            HandlerError::unavailable(format!("cannot record the completion: {e}"))
        })?;
    match outcome {
        CompletionOutcome::Applied(applied) => {
            let end = Ended::of_completion(&completion, applied, now);
            wake(registry, id, Wake::Completed(Box::new(end)), waker);
            Ok(())
        }
        CompletionOutcome::AlreadyFinished(_) => {
            if let Some(record) = recorded_already(store, id, &completion).await {
                // The same completion again: its sender did not see the first 200 (it died, or
                // gave up waiting). It is recorded: acknowledge it, or the sender would count a
                // completion that got through as a failed delivery. (A task still waiting for
                // it, should it have missed the first, gets it now.)
                tracing::debug!(operation_id = %id, "a completion received again");
                let end = Ended::of_record(&record);
                wake(registry, id, Wake::Completed(Box::new(end)), waker);
                return Ok(());
            }
            Err(refusal(id, &completion, outcome))
        }
        refused => Err(refusal(id, &completion, refused)),
    }
}

/// The error a completion's sender gets when the completion is refused, whether a store or an
/// ephemeral registry refused it: NOT_FOUND for an unknown operation or one that finished
/// otherwise, BAD_REQUEST for a token other than the start response gave.
fn refusal(id: OperationId, completion: &Completion, outcome: CompletionOutcome) -> HandlerError {
    match outcome {
        CompletionOutcome::AlreadyFinished(state) => HandlerError::not_found(format!(
            "operation `{id}` already finished ({state}); the completion is not needed"
        )),
        CompletionOutcome::TokenMismatch { expected } => HandlerError::bad_request(format!(
            "completion for token `{}` sent to the callback of token `{expected}`",
            completion.token
        )),
        // (`Applied` is no refusal; it is never passed here.)
        CompletionOutcome::UnknownOperation | CompletionOutcome::Applied(_) => {
            HandlerError::not_found(format!(
                "no operation has callback id `{id}` (unknown, or no longer kept: purged after \
                 its retention, or ended in a client that keeps nothing)"
            ))
        }
    }
}

/// Wakes the task of `id` through its own queue if given and still there, otherwise through the
/// registry.
fn wake(registry: &Registry, id: OperationId, wake: Wake, waker: Option<&WeakSender<Inbound>>) {
    let wake = match waker {
        None => wake,
        Some(waker) => match waker.post(Inbound::Wake(wake)) {
            Ok(()) => return,
            Err(Inbound::Wake(wake)) => wake,
            // (Only a wake was posted.)
            Err(Inbound::Command(_)) => return,
        },
    };
    registry.wake(id, wake);
}

/// The record of operation `id`, if it ended with exactly this completion (same token, same
/// outcome).
async fn recorded_already(
    store: &dyn CallerStore,
    id: OperationId,
    completion: &Completion,
) -> Option<CallerRecord> {
    let record = store.get(id).await.ok()??;
    record.ended_with(completion).then_some(record)
}

/// The in-process callback of one operation: its completion is recorded in the store, then
/// handed to its task directly.
pub(crate) struct PendingSink {
    pub inbox: Arc<Inbox>,
    pub id: OperationId,
    pub waker: WeakSender<Inbound>,
}

impl CompletionSink for PendingSink {
    fn complete(&self, completion: Completion) -> BoxFuture<'static, Result<(), HandlerError>> {
        let inbox = self.inbox.clone();
        let id = self.id;
        let waker = Some(self.waker.clone());
        async move { inbox.deliver_with(id, completion, waker).await }.boxed()
    }
}
