//! The caller's table of operations that may still receive a completion, keyed by callback id.
//!
//! An entry is created when the operation is scheduled, *before* its first attempt, so a completion
//! that arrives before the start response finds its operation. A completion goes to the operation's
//! driver, which ends the operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::completion::{Completion, CompletionSink};
use crate::error::HandlerError;

struct Entry {
    /// At most one completion is delivered: the entry is removed when it is.
    driver: oneshot::Sender<Completion>,
    token: Option<String>,
}

/// Operations waiting for a completion, by callback id.
#[derive(Default)]
pub(crate) struct PendingTable {
    entries: Mutex<HashMap<String, Entry>>,
}

impl PendingTable {
    /// Registers an operation; returns its callback id and where its completion will arrive.
    pub fn register(&self) -> (String, oneshot::Receiver<Completion>) {
        let id = crate::id::new_v4().simple().to_string();
        // A oneshot, not an mpsc channel: tokio's mpsc allocates a block of 32 slots up front,
        // 4.6 KiB per pending operation for a 144-byte `Completion`.
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            id.clone(),
            Entry {
                driver: tx,
                token: None,
            },
        );
        (id, rx)
    }

    /// Records the token the start response gave.
    pub fn set_token(&self, id: &str, token: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.token = Some(token.to_owned());
        }
    }

    /// Forgets an entry (the operation ended, or its caller abandoned it).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Delivers a completion. Unknown ids (and repeated completions, whose entry is gone) are
    /// NOT_FOUND; a token that contradicts the start response is BAD_REQUEST.
    pub fn complete(&self, id: &str, completion: Completion) -> Result<(), HandlerError> {
        let mut entries = self.lock();
        let entry = entries.get(id).ok_or_else(|| not_found(id))?;
        if let Some(expected) = &entry.token
            && !completion.token.is_empty()
            && &completion.token != expected
        {
            return Err(HandlerError::bad_request(format!(
                "completion for token `{}` sent to the callback of token `{expected}`",
                completion.token
            )));
        }
        let entry = entries.remove(id).ok_or_else(|| not_found(id))?;
        drop(entries);
        entry.driver.send(completion).map_err(|_| not_found(id))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(id: &str) -> HandlerError {
    HandlerError::not_found(format!(
        "no operation is waiting for callback `{id}` (unknown, already completed, or abandoned)"
    ))
}

/// The in-process callback of one operation.
pub(crate) struct PendingSink {
    pub table: Arc<PendingTable>,
    pub id: String,
}

impl CompletionSink for PendingSink {
    fn complete(&self, completion: Completion) -> BoxFuture<'static, Result<(), HandlerError>> {
        let result = self.table.complete(&self.id, completion);
        async move { result }.boxed()
    }
}
