//! The flusher: a thread that makes committed batches durable before their writes are answered,
//! so that the writer thread does not wait for the disk.
//!
//! With [`SqliteDurability::PowerLoss`](super::SqliteDurability::PowerLoss) the write connection
//! commits with `synchronous = NORMAL`: a commit appends its frames to the write-ahead log with
//! `write` and returns without an `fsync`. The writer hands the batch's reports to this thread;
//! this thread flushes the log file (`fsync`), answers them, and tells the writer, which has run
//! the writes arriving meanwhile in its next transaction and commits it then (`batch.rs`). A write
//! is answered only once its commit is on disk, as with `synchronous = FULL`, which flushes inside
//! the commit; but the writer goes on running writes while the disk works.
//!
//! What `NORMAL` leaves out SQLite still does: it flushes the log's header when the log restarts
//! and the log before and the database after each checkpoint, so a power loss can take
//! unanswered commits only, never leave the file corrupt.
//!
//! A commit whose flush fails is visible to later reads but may not survive a power loss; its
//! writes report [`StoreError::Unavailable`](crate::store::StoreError::Unavailable), retryable
//! (a retried claim or answer finds what was committed).

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;

use super::writer::{Report, spawn};
use crate::store::StoreError;

enum Flush {
    /// The reports of a committed batch.
    Committed(Vec<Report>),
    /// Flush what is queued, then stop; acknowledged once done.
    Close(mpsc::Sender<()>),
}

/// The queue of the flusher thread.
pub(super) struct Flusher {
    queue: mpsc::Sender<Flush>,
}

/// Called once the commits taken are answered.
pub(super) type Flushed = Box<dyn Fn() + Send>;

impl Flusher {
    /// Starts the thread that flushes `wal`, the write-ahead log of the database at `path`, and
    /// calls `flushed` after answering the commits of each flush.
    pub fn start(wal: File, path: &Path, flushed: Flushed) -> Result<Self, StoreError> {
        let (queue, receiver) = mpsc::channel();
        spawn("nexus-sqlite-sync", "flusher", path, move || {
            run(&wal, &receiver, &flushed);
        })?;
        Ok(Self { queue })
    }

    /// Answers `reports`, whose batch committed, once the log is on disk.
    pub fn committed(&self, reports: Vec<Report>) {
        if let Err(mpsc::SendError(Flush::Committed(reports))) =
            self.queue.send(Flush::Committed(reports))
        {
            for report in reports {
                report(Some("the SQLite store's flusher thread is gone"));
            }
        }
    }

    /// Flushes and answers what is queued, and stops the thread.
    pub fn close(&self) {
        let (done, closed) = mpsc::channel();
        if self.queue.send(Flush::Close(done)).is_ok() {
            let _ = closed.recv();
        }
    }
}

/// The thread's loop: takes every batch queued, flushes once, answers them.
fn run(wal: &File, queue: &mpsc::Receiver<Flush>, flushed: &Flushed) {
    let mut committed = Vec::new();
    while let Ok(first) = queue.recv() {
        let mut close = None;
        let mut next = Some(first);
        while let Some(flush) = next.take() {
            match flush {
                Flush::Committed(reports) => committed.extend(reports),
                Flush::Close(done) => {
                    close = Some(done);
                    break;
                }
            }
            next = queue.try_recv().ok();
        }
        if !committed.is_empty() {
            let failed = wal.sync_all().err().map(|e| {
                tracing::warn!(error = %e, "cannot flush an SQLite write-ahead log");
                format!("its commit could not be flushed to disk: {e}")
            });
            for report in committed.drain(..) {
                report(failed.as_deref());
            }
            flushed();
        }
        if let Some(done) = close {
            let _ = done.send(());
            return;
        }
    }
}
