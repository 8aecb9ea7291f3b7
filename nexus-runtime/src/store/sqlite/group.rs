//! Group commit: the writes of concurrent callers share one SQLite transaction, and one commit
//! (one `fsync` with `synchronous = FULL`) makes them all durable.
//!
//! A write takes its turn on the store's one writing connection ([`GroupWriter::write`]): the
//! first opens a batch transaction (`BEGIN IMMEDIATE`), each runs its statements in it (inside a
//! savepoint when it has several, so that a failing write undoes only itself), and then queues
//! again behind the writes that arrived meanwhile ([`Write::commit`]). When its turn comes back,
//! either a later member of its batch committed the batch already, or it commits it: the writes
//! queued behind it then run in it first. The turns are a fair (FIFO) lock, so a batch is the
//! writes that were waiting while it ran; with one caller at a time, it is one write and one
//! commit, as without batching.
//!
//! A write reports success only once its batch is committed. If the commit fails, every member
//! gets the error (and retries, as for any store error). A write dropped before it commits (its
//! caller went away, or it failed) is rolled back to its savepoint by the next turn, and a task
//! commits what the others of its batch wrote if nobody else is left to.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// What a batch member learns of the commit: `None` for success, or the commit's error.
type Committed = Option<Arc<str>>;

/// The open batch transaction (it owns the store's one writing connection while open).
type BatchTx = Transaction<'static, Sqlite>;

/// The writing side of an SQLite store: one connection, taken from `pool` for each batch.
#[derive(Clone)]
pub(crate) struct GroupWriter {
    pool: SqlitePool,
    batch: Arc<Mutex<Batch>>,
}

#[derive(Default)]
struct Batch {
    /// The open batch transaction, if one is open (and no write holds it).
    tx: Option<BatchTx>,
    /// The writes in the open batch, waiting for its commit.
    members: Vec<oneshot::Sender<Committed>>,
    /// A write was dropped inside its savepoint: roll it back before the next statement.
    abandoned_savepoint: bool,
}

/// A write's turn on the batch transaction: statements run on it as on a connection
/// (`&mut *write`); [`commit`](Self::commit) ends the turn and waits for the batch's commit.
pub(crate) struct Write {
    turn: Option<OwnedMutexGuard<Batch>>,
    tx: Option<BatchTx>,
    savepoint: bool,
    writer: GroupWriter,
}

impl GroupWriter {
    /// A writer taking its connection from `pool` (which should hold one).
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            batch: Arc::default(),
        }
    }

    /// Waits for this write's turn and gives it the batch transaction (opening one if none is
    /// open). With `savepoint`, its statements are undone together if it is dropped uncommitted;
    /// without, each statement is atomic on its own (enough for a write of one statement).
    pub async fn write(&self, savepoint: bool) -> Result<Write, sqlx::Error> {
        let mut turn = self.batch.clone().lock_owned().await;
        let mut tx = match turn.tx.take() {
            Some(mut tx) => {
                if turn.abandoned_savepoint {
                    turn.abandoned_savepoint = false;
                    if let Err(e) = roll_back_savepoint(&mut tx).await {
                        fail_batch(&mut turn, tx, &e).await;
                        return Err(e);
                    }
                }
                tx
            }
            None => self.pool.begin_with("BEGIN IMMEDIATE").await?,
        };
        if savepoint && let Err(e) = run(&mut tx, "SAVEPOINT nexus_write").await {
            turn.tx = Some(tx);
            drop(turn);
            self.spawn_flush();
            return Err(e);
        }
        Ok(Write {
            turn: Some(turn),
            tx: Some(tx),
            savepoint,
            writer: self.clone(),
        })
    }

    /// Commits the open batch, if any, from a task of its own: for a write that ended without
    /// committing, whose batch may hold others' writes with nobody left to commit them.
    fn spawn_flush(&self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let writer = self.clone();
            runtime.spawn(async move {
                let mut turn = writer.batch.clone().lock_owned().await;
                if let Some(tx) = turn.tx.take() {
                    commit_batch(&mut turn, tx).await;
                }
            });
        }
    }
}

impl Write {
    /// Ends this write's turn, and returns once its batch is committed (by a later member, or
    /// by this one when its turn comes back).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let (Some(mut turn), Some(mut tx)) = (self.turn.take(), self.tx.take()) else {
            return Err(sqlx::Error::WorkerCrashed);
        };
        if self.savepoint
            && let Err(e) = run(&mut tx, "RELEASE nexus_write").await
        {
            turn.tx = Some(tx);
            turn.abandoned_savepoint = true;
            drop(turn);
            self.writer.spawn_flush();
            return Err(e);
        }
        let (done, committed) = oneshot::channel();
        turn.members.push(done);
        turn.tx = Some(tx);
        drop(turn);
        // Queue again: the writes that arrived meanwhile join this batch first.
        let mut turn = self.writer.batch.clone().lock_owned().await;
        if let Some(tx) = turn.tx.take() {
            commit_batch(&mut turn, tx).await;
        }
        drop(turn);
        match committed.await {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(sqlx::Error::Protocol(format!(
                "the transaction this write was batched in did not commit: {error}"
            ))),
            // The committing write was dropped in the middle of the commit.
            Err(_) => Err(sqlx::Error::Protocol(
                "the transaction this write was batched in was abandoned during its commit".into(),
            )),
        }
    }
}

impl Deref for Write {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.tx
            .as_deref()
            .expect("a write holds the batch transaction until it commits or drops")
    }
}

impl DerefMut for Write {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.tx
            .as_deref_mut()
            .expect("a write holds the batch transaction until it commits or drops")
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        let (Some(mut turn), Some(tx)) = (self.turn.take(), self.tx.take()) else {
            return;
        };
        // Dropped uncommitted: its savepoint is rolled back at the next turn, and the batch
        // (others' writes, or nothing) committed by a member still to come or by a task.
        turn.abandoned_savepoint |= self.savepoint;
        turn.tx = Some(tx);
        drop(turn);
        self.writer.spawn_flush();
    }
}

/// Commits the batch `tx` (rolling back an abandoned savepoint first) and tells its members; the
/// connection goes back to the pool.
async fn commit_batch(turn: &mut Batch, mut tx: BatchTx) {
    if turn.abandoned_savepoint {
        turn.abandoned_savepoint = false;
        if let Err(e) = roll_back_savepoint(&mut tx).await {
            fail_batch(turn, tx, &e).await;
            return;
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for member in turn.members.drain(..) {
                let _ = member.send(None);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "an SQLite batch transaction did not commit");
            tell(turn, &e);
        }
    }
}

/// Rolls the batch back and tells its members why.
async fn fail_batch(turn: &mut Batch, tx: BatchTx, error: &sqlx::Error) {
    tracing::warn!(%error, "an SQLite batch transaction failed; its writes are rolled back");
    let _ = tx.rollback().await;
    tell(turn, error);
}

fn tell(turn: &mut Batch, error: &sqlx::Error) {
    let error: Arc<str> = error.to_string().into();
    for member in turn.members.drain(..) {
        let _ = member.send(Some(error.clone()));
    }
}

async fn roll_back_savepoint(tx: &mut BatchTx) -> Result<(), sqlx::Error> {
    run(tx, "ROLLBACK TO nexus_write").await?;
    run(tx, "RELEASE nexus_write").await
}

async fn run(tx: &mut BatchTx, statement: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(statement).execute(&mut **tx).await.map(drop)
}
