//! Group commit: the writes of concurrent callers share one SQLite transaction, and one commit
//! (one `fsync` with `synchronous = FULL`) makes them all durable.
//!
//! A write takes its turn on the store's one writing connection ([`GroupWriter::write`]): the
//! first opens a batch transaction (`BEGIN IMMEDIATE`), each runs its statements in it (inside a
//! savepoint when it has several, so that a failing write undoes only itself; never released, as
//! the batch's commit commits the savepoints still open), and then queues
//! again behind the writes that arrived meanwhile ([`Write::commit`]). When its turn comes back,
//! either a later member of its batch committed the batch already, or it commits it: the writes
//! queued behind it then run in it first. The turns are a fair (FIFO) lock, so a batch is the
//! writes that were waiting while it ran; with one caller at a time, it is one write and one
//! commit, as without batching.
//!
//! A write reports success only once its batch is committed. If the commit fails, every member
//! gets the error (and retries, as for any store error). A write dropped before it commits (its
//! caller went away, or it failed) is rolled back to its savepoint by the next turn, and a task
//! commits what the others of its batch wrote if nobody else is left to. A batch dropped in the
//! middle of one of its own statements (the write running it went away) is rolled back, and its
//! members are told so rather than left waiting.
//!
//! The errors after which SQLite abandons the whole transaction itself (a full disk, an I/O
//! error) fail the batch's commit, so every member reports the error; statements that ran after
//! such an error, outside any transaction, may have been kept all the same. Every write here is
//! idempotent or conditional (a compare-and-set, a claim), so a retry finds what was kept. The
//! connection such a batch leaves behind may still count itself inside a transaction (its
//! rollback failed: SQLite had rolled back already): the pool closes it when it comes back and
//! opens a new one, so the next write works as soon as the cause is gone.

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
    /// The open batch, if one is open and no write holds it.
    open: Option<Open>,
    /// A write was dropped inside its savepoint: roll it back before the next statement.
    abandoned_savepoint: bool,
}

/// An open batch: its transaction and the writes waiting for its commit. They travel together:
/// wherever an await is interrupted (its future dropped), dropping the batch rolls its
/// transaction back *and* drops its members' senders, so they learn it did not commit instead of
/// waiting for it.
struct Open {
    tx: BatchTx,
    members: Vec<oneshot::Sender<Committed>>,
}

/// A write's turn on the batch transaction: statements run on it as on a connection
/// (`&mut *write`); [`commit`](Self::commit) ends the turn and waits for the batch's commit.
pub(crate) struct Write {
    turn: Option<OwnedMutexGuard<Batch>>,
    open: Option<Open>,
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
        let abandoned = std::mem::take(&mut turn.abandoned_savepoint);
        let mut open = match turn.open.take() {
            Some(mut open) => {
                if abandoned && let Err(e) = roll_back_savepoint(&mut open.tx).await {
                    fail_batch(open, &e).await;
                    return Err(e);
                }
                open
            }
            None => Open {
                tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                members: Vec::new(),
            },
        };
        if savepoint && let Err(e) = run(&mut open.tx, "SAVEPOINT nexus_write").await {
            turn.open = Some(open);
            drop(turn);
            self.spawn_flush();
            return Err(e);
        }
        Ok(Write {
            turn: Some(turn),
            open: Some(open),
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
                let abandoned = std::mem::take(&mut turn.abandoned_savepoint);
                if let Some(open) = turn.open.take() {
                    commit_batch(open, abandoned).await;
                }
            });
        }
    }
}

impl Write {
    /// Ends this write's turn, and returns once its batch is committed (by a later member, or
    /// by this one when its turn comes back).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let (Some(mut turn), Some(mut open)) = (self.turn.take(), self.open.take()) else {
            return Err(sqlx::Error::WorkerCrashed);
        };
        // The savepoint is not released: the batch's COMMIT commits every savepoint still open,
        // and a statement fewer per write is a hand-off to the connection's thread fewer.
        let (done, committed) = oneshot::channel();
        open.members.push(done);
        turn.open = Some(open);
        drop(turn);
        // Queue again: the writes that arrived meanwhile join this batch first.
        let mut turn = self.writer.batch.clone().lock_owned().await;
        let abandoned = std::mem::take(&mut turn.abandoned_savepoint);
        if let Some(open) = turn.open.take() {
            commit_batch(open, abandoned).await;
        }
        drop(turn);
        // Either failure is reported as an I/O error, which the store reports as unavailable
        // (retryable): this write did not land, through no fault of its own.
        match committed.await {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(not_committed(format!(
                "the transaction this write was batched in did not commit: {error}"
            ))),
            // The batch was dropped in the middle of a statement or of its commit (the write
            // that ran it went away): rolled back, as far as this write can tell.
            Err(_) => Err(not_committed(
                "the transaction this write was batched in was abandoned before it committed"
                    .into(),
            )),
        }
    }
}

impl Deref for Write {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self
            .open
            .as_ref()
            .expect("a write holds the batch until it commits or drops")
            .tx
    }
}

impl DerefMut for Write {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self
            .open
            .as_mut()
            .expect("a write holds the batch until it commits or drops")
            .tx
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        let (Some(mut turn), Some(open)) = (self.turn.take(), self.open.take()) else {
            return;
        };
        // Dropped uncommitted: its savepoint is rolled back at the next turn, and the batch
        // (others' writes, or nothing) committed by a member still to come or by a task.
        turn.abandoned_savepoint |= self.savepoint;
        turn.open = Some(open);
        drop(turn);
        self.writer.spawn_flush();
    }
}

/// Commits batch `open` (rolling back an abandoned savepoint first) and tells its members; the
/// connection goes back to the pool.
async fn commit_batch(mut open: Open, abandoned_savepoint: bool) {
    if abandoned_savepoint && let Err(e) = roll_back_savepoint(&mut open.tx).await {
        fail_batch(open, &e).await;
        return;
    }
    let Open { tx, members } = open;
    let committed = tx.commit().await;
    let outcome: Committed = match committed {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, "an SQLite batch transaction did not commit");
            Some(e.to_string().into())
        }
    };
    for member in members {
        let _ = member.send(outcome.clone());
    }
}

/// Rolls batch `open` back and tells its members why.
async fn fail_batch(open: Open, error: &sqlx::Error) {
    tracing::warn!(%error, "an SQLite batch transaction failed; its writes are rolled back");
    let Open { tx, members } = open;
    let _ = tx.rollback().await;
    let error: Arc<str> = error.to_string().into();
    for member in members {
        let _ = member.send(Some(error.clone()));
    }
}

fn not_committed(message: String) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(message))
}

async fn roll_back_savepoint(tx: &mut BatchTx) -> Result<(), sqlx::Error> {
    run(tx, "ROLLBACK TO nexus_write").await?;
    run(tx, "RELEASE nexus_write").await
}

async fn run(tx: &mut BatchTx, statement: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(statement).execute(&mut **tx).await.map(drop)
}
