//! The writer thread's loop: writes run as they arrive in an open transaction, which commits
//! when the queue is empty and the disk is free.
//!
//! Without a flusher (`sync.rs`) the open transaction commits as soon as the queue is empty, and
//! the commit itself flushes (`synchronous = FULL`) or not (`NORMAL`). With one, the commit also
//! waits until the flusher has finished flushing the previous one: meanwhile the writes that
//! arrive run in the open transaction (only a result marked early, such as a start refused
//! because its request id is in flight or the outbox's claim, is answered as soon as it ran), and
//! the next commit takes them all. The disk's pace sets the size of the batches, as it does with
//! `FULL`, but the writer never waits for the disk with writes queued.

use std::collections::VecDeque;
use std::sync::mpsc;

use rusqlite::Connection;

use super::sync::Flusher;
use super::writer::{MAX_BATCH, Message, Report};

/// The transaction being filled.
struct Open {
    /// The reports of the writes run in it, answered once it commits (or fails).
    reports: Vec<Report>,
}

/// The thread's loop, until the store is closed or every handle is gone.
pub(super) fn run(conn: Connection, queue: &mpsc::Receiver<Message>, flusher: Option<&Flusher>) {
    let mut open: Option<Open> = None;
    // The flusher has a commit in hand: the open transaction waits for it.
    let mut flushing = false;
    // Messages taken while the open transaction was full, in order.
    let mut held: VecDeque<Message> = VecDeque::new();
    loop {
        if open.as_ref().is_some_and(|o| o.reports.len() >= MAX_BATCH) {
            if !flushing {
                commit(&conn, &mut open, flusher, &mut flushing);
                continue;
            }
            // Full: only the flusher's word lets it go on.
            match queue.recv() {
                Ok(Message::Flushed) => flushing = false,
                Ok(other) => held.push_back(other),
                Err(_) => flushing = false,
            }
            continue;
        }
        let next = if let Some(message) = held.pop_front() {
            Some(message)
        } else if open.is_some() && !flushing {
            match queue.try_recv() {
                Ok(message) => Some(message),
                Err(mpsc::TryRecvError::Empty) => {
                    commit(&conn, &mut open, flusher, &mut flushing);
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        } else {
            queue.recv().ok()
        };
        let Some(message) = next else {
            commit(&conn, &mut open, flusher, &mut flushing);
            return;
        };
        match message {
            Message::Flushed => flushing = false,
            Message::Write(job) => {
                if open.is_none() {
                    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                        let why = format!("cannot begin a transaction: {e}");
                        tracing::warn!(error = %why, "an SQLite batch transaction could not begin");
                        (job(None).report)(Some(&why));
                        continue;
                    }
                    open = Some(Open {
                        reports: Vec::new(),
                    });
                }
                let ran = job(Some(&conn));
                let Some(batch) = open.as_mut() else { continue };
                batch.reports.push(ran.report);
                if let Some(cause) = ran.fatal {
                    let failed = open.take().map(|o| o.reports).unwrap_or_default();
                    roll_back(&conn);
                    fail(
                        failed,
                        &format!(
                            "a write of the batch failed and the transaction was rolled back: \
                             {cause}"
                        ),
                    );
                }
            }
            Message::Direct(job) => {
                commit(&conn, &mut open, flusher, &mut flushing);
                (job(Some(&conn)).report)(None);
            }
            Message::Close(done) => {
                commit(&conn, &mut open, flusher, &mut flushing);
                for message in held.drain(..) {
                    if let Message::Write(job) | Message::Direct(job) = message {
                        (job(None).report)(Some("the store was closed"));
                    }
                }
                if let Some(flusher) = flusher {
                    flusher.close();
                }
                drop(conn);
                let _ = done.send(());
                return;
            }
        }
    }
}

/// Commits the open transaction, if any, and hands its reports to the flusher (or answers them).
fn commit(
    conn: &Connection,
    open: &mut Option<Open>,
    flusher: Option<&Flusher>,
    flushing: &mut bool,
) {
    let Some(Open { reports }) = open.take() else {
        return;
    };
    if let Err(e) = conn.execute_batch("COMMIT") {
        roll_back(conn);
        fail(reports, &e.to_string());
        return;
    }
    match flusher {
        Some(flusher) => {
            flusher.committed(reports);
            *flushing = true;
        }
        None => {
            for report in reports {
                report(None);
            }
        }
    }
}

/// Reports the failure of a batch to each of its writes.
fn fail(reports: Vec<Report>, why: &str) {
    tracing::warn!(error = %why, "an SQLite batch transaction did not commit; its writes are rolled back");
    for report in reports {
        report(Some(why));
    }
}

/// Rolls back whatever transaction is open (SQLite may have rolled it back already).
fn roll_back(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %e, "an SQLite batch transaction could not be rolled back");
    }
}
