//! The registry's audit log: one JSON object per line for every change and every refused call.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One line of the audit log.
///
/// ```json
/// {"at":"2026-12-05T21:00:00.000Z","who":"alice","action":"add","endpoint":"fraud","detail":"targets: http://127.0.0.1:7243"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, in RFC 3339 (UTC, milliseconds).
    pub at: String,
    /// Who: the principal's name (`file` for a reload of the registry file, `anonymous` for an
    /// unauthenticated caller).
    pub who: String,
    /// What: `add`, `update`, `remove`, `reload`, `reload-failed` or `refused`.
    pub action: String,
    /// The endpoint concerned (empty for a reload).
    pub endpoint: String,
    /// Details: the new targets, what a reload changed, why a call was refused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl AuditEvent {
    /// An event happening now.
    pub fn now(
        who: impl Into<String>,
        action: impl Into<String>,
        endpoint: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            who: who.into(),
            action: action.into(),
            endpoint: endpoint.into(),
            detail: detail.into(),
        }
    }
}

/// An append-only JSON-lines file of [`AuditEvent`]s. Cheap to clone; clones share the file.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl AuditLog {
    /// Opens (creating it if missing) the log at `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_owned();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` as one line. A write that fails is logged (with `tracing`) and dropped:
    /// the audit log never stops a call.
    pub fn append(&self, event: &AuditEvent) {
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = file.write_all(&line) {
            tracing::error!(%error, path = %self.path.display(), "cannot append to the audit log");
        }
    }

    /// Reads every event of the log at `path`, skipping lines that are not events.
    pub fn read(path: impl AsRef<Path>) -> std::io::Result<Vec<AuditEvent>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }
}
