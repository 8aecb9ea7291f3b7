//! The writer: one thread that owns the store's write connection and commits the writes queued
//! for it in batches (group commit).
//!
//! A write is a closure run on the connection inside the batch's transaction. The thread opens
//! a transaction (`BEGIN IMMEDIATE`) for the first write, runs the writes as they arrive (up to
//! [`MAX_BATCH`]) one after the other, synchronously, and commits them together once the queue
//! is empty and the previous commit is on disk (`batch.rs`, `sync.rs`): one `fsync` for all of
//! them. Each write's result goes back through its oneshot once its batch is committed and
//! flushed, never before; except a result marked early ([`Writer::write_early`]), answered as
//! soon as it ran.
//!
//! A write that fails on its own (a duplicate key, a record it cannot encode) changed nothing:
//! its statements are ordered so that the one that can fail runs first, and SQLite undoes a
//! failing statement by itself; the others of its batch go on. A fault of the machine (a full
//! disk, an I/O error, no memory: SQLite may have abandoned the transaction already) or a commit
//! that fails fails the whole batch: it is rolled back and each of its writes reports
//! [`StoreError::Unavailable`], retryable. The thread then goes on with the next batch on the
//! same connection, which works again as soon as the cause is gone.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use super::batch;
use super::sync::Flusher;
use crate::store::StoreError;

/// The most writes one transaction takes; the rest wait for the next one.
pub(crate) const MAX_BATCH: usize = 512;

/// A queued write: run on the connection (or not at all, `None`, when its batch failed before its
/// turn), it returns how to report its result.
pub(super) type Job = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

/// Sends a write's result, or the failure of its batch (`Some`) if that did not commit.
pub(super) type Report = Box<dyn FnOnce(Option<&str>) + Send>;

/// What a write did: whether the batch must be abandoned, and how to report the outcome.
pub(super) struct Ran {
    /// The write failed in a way that leaves the transaction unusable: its error, which the
    /// failure of the batch names (a full disk, an I/O error).
    pub fatal: Option<String>,
    /// Sends the result, or the batch's failure if it did not commit.
    pub report: Report,
}

pub(super) enum Message {
    /// A write to batch.
    Write(Job),
    /// Something to run on the connection outside any batch (a setting), answered at once.
    Direct(Job),
    /// Stop after the writes queued before this; acknowledged once the connection is closed.
    Close(oneshot::Sender<()>),
    /// The flusher has answered the last commit it took and can take the next.
    Flushed,
}

/// The writer's queue. Cloned with the store; the thread stops when every clone is gone or the
/// store is closed.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
    /// Whether a flusher thread flushes each commit before its writes are answered.
    #[cfg(test)]
    flushes: bool,
}

impl Writer {
    /// Starts the writer thread on `conn`. With `wal`, the connection's write-ahead log, a
    /// batch's writes are answered once a flusher thread has flushed the log after its commit
    /// (`sync.rs`); without, as soon as it committed.
    pub fn start(conn: Connection, path: &Path, wal: Option<File>) -> Result<Self, StoreError> {
        let (queue, receiver) = mpsc::channel();
        let flusher = match wal {
            Some(wal) => {
                let wake = queue.clone();
                let flushed = Box::new(move || {
                    let _ = wake.send(Message::Flushed);
                });
                Some(Flusher::start(wal, path, flushed)?)
            }
            None => None,
        };
        #[cfg(test)]
        let flushes = flusher.is_some();
        spawn("nexus-sqlite-writer", "writer", path, move || {
            batch::run(conn, &receiver, flusher.as_ref());
        })?;
        Ok(Self {
            queue,
            #[cfg(test)]
            flushes,
        })
    }

    /// Whether a flusher thread flushes each commit before its writes are answered.
    #[cfg(test)]
    pub fn flushes(&self) -> bool {
        self.flushes
    }

    /// Runs `write` in the next batch transaction; its result once that batch committed.
    pub async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, Message::Write, None).await
    }

    /// Like [`write`](Self::write), but a result for which `early` holds is answered as soon as
    /// the write ran, before its batch commits. Only for results whose loss the caller handles,
    /// should the batch be rolled back after all: a start refused because its request id is in
    /// flight (retryable whatever becomes of the other claim), or the outbox's claim of
    /// deliveries, which a lost claim leaves due to be sent again.
    pub async fn write_early<T, F>(&self, write: F, early: fn(&T) -> bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, Message::Write, Some(early)).await
    }

    /// Runs `f` on the write connection outside any batch (settings, pragmas).
    pub async fn direct<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f, Message::Direct, None).await
    }

    async fn submit<T, F>(
        &self,
        f: F,
        wrap: fn(Job) -> Message,
        early: Option<fn(&T) -> bool>,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.enqueue(f, wrap, early)?.await.map_err(|_| closed())?
    }

    /// Queues `f`; its result comes through the receiver.
    fn enqueue<T, F>(
        &self,
        f: F,
        wrap: fn(Job) -> Message,
        early: Option<fn(&T) -> bool>,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let Some(conn) = conn else {
                return Ran {
                    fatal: None,
                    report: Box::new(move |failed: Option<&str>| {
                        let _ = done.send(Err(unavailable(failed.unwrap_or("not run"))));
                    }),
                };
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable {
                        message: "an SQLite write panicked".into(),
                        source: None,
                    })
                });
            let fatal = match &outcome {
                Err(e @ StoreError::Unavailable { .. }) => Some(e.to_string()),
                Err(e) if conn.is_autocommit() => Some(e.to_string()),
                Err(_) => None,
                Ok(value) => {
                    if early.is_some_and(|early| early(value)) {
                        let _ = done.send(outcome);
                        return Ran {
                            fatal: None,
                            report: Box::new(|_: Option<&str>| {}),
                        };
                    }
                    None
                }
            };
            Ran {
                fatal,
                report: Box::new(move |failed: Option<&str>| {
                    let outcome = match (failed, outcome) {
                        (None, outcome) => outcome,
                        // Its own error says more than the batch's.
                        (Some(_), Err(e)) if !e.is_retryable() => Err(e),
                        (Some(why), _) => Err(unavailable(why)),
                    };
                    let _ = done.send(outcome);
                }),
            }
        });
        self.queue.send(wrap(job)).map_err(|_| closed())?;
        Ok(result)
    }

    /// Stops the thread after the writes queued so far, without waiting for it.
    pub fn shut_down(&self) {
        let (done, _) = oneshot::channel();
        let _ = self.queue.send(Message::Close(done));
    }

    /// Stops the thread after the writes queued so far, and waits for it.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// Starts a thread of the store at `path`: its `name`, and `what` it is in an error.
pub(super) fn spawn(
    name: &str,
    what: &str,
    path: &Path,
    run: impl FnOnce() + Send + 'static,
) -> Result<(), StoreError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(run)
        .map(drop)
        .map_err(|e| StoreError::Open {
            message: format!(
                "cannot start the {what} thread of SQLite database `{}`: {e}",
                path.display()
            ),
            source: Some(Box::new(e)),
        })
}

fn closed() -> StoreError {
    StoreError::Unavailable {
        message: "the SQLite store is closed".into(),
        source: None,
    }
}

fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable {
        message: format!("the transaction this write was batched in did not commit: {why}"),
        source: None,
    }
}

/// Maps a rusqlite error to a [`StoreError`]: a unique key taken is a duplicate; busy, locked and
/// the faults of the machine that pass with their cause (a full disk, an I/O error, no memory)
/// are retryable.
pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    let message = e.to_string();
    let code = e.sqlite_error_code();
    if let rusqlite::Error::SqliteFailure(ffi, _) = &e
        && matches!(
            ffi.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    {
        return StoreError::Duplicate(message);
    }
    match code {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::OutOfMemory
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen,
        ) => StoreError::Unavailable {
            message,
            source: Some(Box::new(e)),
        },
        _ => StoreError::Database {
            message,
            source: Some(Box::new(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds the writer with a direct job while a write answered early and a write that fails
    /// its batch are queued, so that both run in one batch.
    #[tokio::test]
    async fn an_early_answer_comes_before_its_batch_rolls_back() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let conn = Connection::open(dir.path().join("w.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (n INTEGER)")
            .expect("schema");
        let writer = Writer::start(conn, dir.path(), None).expect("writer");
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hold = writer
            .enqueue(
                move |_| held.recv().map_err(|_| closed()),
                Message::Direct,
                None,
            )
            .expect("hold");
        let early = writer
            .enqueue(
                |conn| {
                    conn.execute("INSERT INTO t VALUES (1)", [])
                        .map_err(db_error)
                },
                Message::Write,
                Some(|n: &usize| *n == 1),
            )
            .expect("early");
        let failing = writer
            .enqueue(
                |_| -> Result<(), StoreError> { Err(unavailable("a fault")) },
                Message::Write,
                None,
            )
            .expect("failing");
        release.send(()).expect("release");
        hold.await.expect("hold").expect("held");
        assert_eq!(early.await.expect("early").expect("answered early"), 1);
        assert!(failing.await.expect("failing").is_err());
        let rows = writer
            .direct(|conn| {
                conn.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))
                    .map_err(db_error)
            })
            .await
            .expect("count");
        assert_eq!(rows, 0, "the early write's batch was rolled back");
    }
}
