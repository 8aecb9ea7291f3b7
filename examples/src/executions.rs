//! A durable log of executions: one JSON line per operation method actually run (a start, or the
//! resumption of an async operation after a restart), never for an answer replayed from the
//! store. Each line is flushed and fsynced before the method goes on, so that a crash test can
//! count, after `kill -9`, how many times each request id was executed.
//!
//! A line: `{"execution":"start"|"resume","operation":"checkTransaction","requestId":"..."}`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Write as _};
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
}

/// An append-only execution log (clones share the file).
#[derive(Clone, Debug)]
pub struct ExecutionLog {
    file: Arc<Mutex<File>>,
}

impl ExecutionLog {
    /// Opens the log at `path` for appending, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Appends one execution and waits until it is on disk.
    pub async fn record(&self, operation: &str, request_id: &str, resumed: bool) -> io::Result<()> {
        let line = serde_json::to_string(&Execution {
            execution: if resumed { "resume" } else { "start" }.to_owned(),
            operation: operation.to_owned(),
            request_id: request_id.to_owned(),
        })? + "\n";
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file
                .lock()
                .map_err(|_| io::Error::other("the execution log's lock is poisoned"))?;
            file.write_all(line.as_bytes())?;
            file.flush()?;
            file.sync_data()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Reads every execution recorded in the log at `path` (a torn last line, from a crash
    /// mid-write, is skipped).
    pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<Execution>> {
        let file = File::open(path)?;
        let mut executions = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Ok(execution) = serde_json::from_str(&line?) {
                executions.push(execution);
            }
        }
        Ok(executions)
    }
}
