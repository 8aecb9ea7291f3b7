//! The caller's table of async operations waiting for their completion.
//!
//! An entry is created *before* the start request is sent, keyed by a callback id that travels in
//! the callback (URL or in-process sink), so a completion that arrives before the start response
//! finds its operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::codec::Content;
use crate::completion::{Completion, CompletionSink};
use crate::error::{CallError, HandlerError};
use crate::link::Link;

/// What a handle waits for: the result (or why there is none), with the handler's links.
pub(crate) type Outcome = Option<(Result<Content, CallError>, Vec<Link>)>;

struct Entry {
    outcome: Arc<watch::Sender<Outcome>>,
    token: Option<String>,
}

/// Pending async operations by callback id.
#[derive(Default)]
pub(crate) struct PendingTable {
    entries: Mutex<HashMap<String, Entry>>,
}

impl PendingTable {
    /// Registers a new pending operation; returns its callback id and outcome channel.
    pub fn register(&self) -> (String, Arc<watch::Sender<Outcome>>) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (tx, _) = watch::channel(None);
        let tx = Arc::new(tx);
        self.lock().insert(
            id.clone(),
            Entry {
                outcome: tx.clone(),
                token: None,
            },
        );
        (id, tx)
    }

    /// Records the token the start response gave.
    pub fn set_token(&self, id: &str, token: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.token = Some(token.to_owned());
        }
    }

    /// Forgets an entry (its handle is gone, or the operation ended another way).
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
        let entry = entries.get(id).ok_or_else(|| {
            HandlerError::not_found(format!(
                "no operation is waiting for callback `{id}` (unknown, or already completed)"
            ))
        })?;
        if let Some(expected) = &entry.token
            && !completion.token.is_empty()
            && &completion.token != expected
        {
            return Err(HandlerError::bad_request(format!(
                "completion for token `{}` sent to the callback of token `{expected}`",
                completion.token
            )));
        }
        let entry = entries
            .remove(id)
            .ok_or_else(|| HandlerError::internal("entry vanished"))?;
        drop(entries);
        let outcome = completion.outcome.map_err(CallError::Operation);
        entry.outcome.send_if_modified(|current| {
            if current.is_none() {
                *current = Some((outcome, completion.links));
                true
            } else {
                false
            }
        });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-process callback of one pending operation.
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
