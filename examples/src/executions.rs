//! A durable log of executions: one JSON line per operation method actually run (a start, or the
//! resumption of an async operation after a restart), never for an answer replayed from the
//! store. Each line is flushed and fsynced before the method goes on, so that a crash test can
//! count, after `kill -9`, how many times each request id was executed.
//!
//! A line: `{"execution":"start"|"resume","operation":"checkTransaction","requestId":"...",
//! "token":"..."}`. `token` is on the starts of async operations only: the token this execution
//! answers with. A start that a crash interrupts before the dispatcher records its answer is run
//! again by the caller's retry (with a new token), so a request id may have several start lines;
//! the one whose token the caller holds (and the handler's store recorded) is the execution that
//! answered, the others were interrupted (see `crash-test`).
//!
//! On a multi-threaded Tokio runtime the line is written without yielding (in
//! `tokio::task::block_in_place`): an operation method that writes it and then returns does so in
//! one poll, so a start request that goes away cannot drop the method between its line and its
//! answer reaching the dispatcher (which then records the answer whatever becomes of the request).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One execution of an operation method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// `start` or `resume`.
    pub execution: String,
    /// The operation's wire name.
    pub operation: String,
    /// The request id of the start.
    pub request_id: String,
    /// The token this execution answers with, for a start that answers asynchronously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Execution {
    /// A start (`resumed` false) or resumption of `operation` for `request_id`, without a token.
    pub fn new(operation: &str, request_id: &str, resumed: bool) -> Self {
        Self {
            execution: if resumed { "resume" } else { "start" }.to_owned(),
            operation: operation.to_owned(),
            request_id: request_id.to_owned(),
            token: None,
        }
    }

    /// The same execution, answering with `token`.
    #[must_use]
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    /// Whether this is a start (not a resumption).
    pub fn is_start(&self) -> bool {
        self.execution == "start"
    }
}

/// An append-only execution log (clones share the file).
#[derive(Clone, Debug)]
pub struct ExecutionLog {
    file: Arc<Mutex<File>>,
}

impl ExecutionLog {
    /// Opens the log at `path` for appending, creating it if needed. A torn last line (a crash
    /// mid-write) is terminated first, so that the next line starts on a line of its own.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0_u8];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Appends one execution and waits until it is on disk.
    pub async fn record(&self, execution: &Execution) -> io::Result<()> {
        let line = serde_json::to_string(execution)? + "\n";
        let file = self.file.clone();
        let write = move || {
            let mut file = file
                .lock()
                .map_err(|_| io::Error::other("the execution log's lock is poisoned"))?;
            file.write_all(line.as_bytes())?;
            file.flush()?;
            file.sync_data()
        };
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(write)
        } else {
            tokio::task::spawn_blocking(write)
                .await
                .map_err(io::Error::other)?
        }
    }

    /// Reads every execution recorded in the log at `path` (a torn line, from a crash
    /// mid-write, is skipped).
    pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<Execution>> {
        Ok(Self::read_with_offsets(path)?
            .into_iter()
            .map(|(_, execution)| execution)
            .collect())
    }

    /// Reads every execution recorded in the log at `path`, each with the byte offset its line
    /// starts at (to tell which process wrote it, given the log's length when each one died).
    pub fn read_with_offsets(path: impl AsRef<Path>) -> io::Result<Vec<(u64, Execution)>> {
        let mut reader = BufReader::new(File::open(path)?);
        let mut executions = Vec::new();
        let mut offset = 0_u64;
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader.read_line(&mut line)?;
            if read == 0 {
                break;
            }
            if line.ends_with('\n')
                && let Ok(execution) = serde_json::from_str(line.trim_end())
            {
                executions.push((offset, execution));
            }
            offset += read as u64;
        }
        Ok(executions)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_with_offsets_and_a_torn_line_terminated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("executions.jsonl");
        let log = ExecutionLog::open(&path).unwrap();
        let first = Execution::new("checkTransaction", "r-1", false).with_token(Some("t-1"));
        log.record(&first).await.unwrap();
        drop(log);
        // A crash mid-write leaves a torn line; the next process starts on a new line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"execution":"sta"#).unwrap();
        drop(file);
        let log = ExecutionLog::open(&path).unwrap();
        let second = Execution::new("checkTransaction", "r-1", true);
        log.record(&second).await.unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"execution":"start","operation":"checkTransaction","requestId":"r-1","token":"t-1"}"#
        );
        let second_at = text.rfind(r#"{"execution":"resume""#).unwrap() as u64;
        assert_eq!(
            ExecutionLog::read_with_offsets(&path).unwrap(),
            vec![(0, first.clone()), (second_at, second.clone())]
        );
        assert_eq!(ExecutionLog::read(&path).unwrap(), vec![first, second]);
    }

    #[tokio::test]
    async fn records_on_a_current_thread_runtime_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("executions.jsonl");
        let log = ExecutionLog::open(&path).unwrap();
        log.record(&Execution::new("getQuickScore", "r-2", false))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"execution\":\"start\",\"operation\":\"getQuickScore\",\"requestId\":\"r-2\"}\n"
        );
    }
}
