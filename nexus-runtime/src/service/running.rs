//! The table of async operations a dispatcher is running, keyed by operation token. A token is
//! reserved here before its operation is recorded in a store, and removed only after its
//! completion is recorded, so that recovery never takes a live operation for an abandoned one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::quota::{Quota, Usage};
use crate::error::HandlerError;
use crate::operation::OperationNames;
use crate::security::Principal;
use crate::transport::CancelRequest;

/// One async operation in flight.
#[derive(Debug)]
pub(crate) struct RunningOperation {
    /// Shared with the operation's context and task.
    pub names: Arc<OperationNames>,
    /// Who started it: the only principal that may cancel it.
    pub principal: Principal,
    /// The size of its start input, counted against its principal's quota.
    pub input_bytes: u64,
    pub cancel: CancellationToken,
}

/// Why a cancel request found nothing to cancel.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelMiss {
    /// No running operation has this token.
    Unknown,
    /// Another principal started the operation with this token.
    Foreign,
    /// The token belongs to another service or operation.
    Mismatch { service: String, operation: String },
}

#[derive(Debug, Default)]
pub(crate) struct RunningOperations {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// By token; the token is shared with the operation's context and task.
    ops: HashMap<Arc<str>, RunningOperation>,
    /// What each principal (by name) holds, for the quotas.
    usage: HashMap<String, Usage>,
    /// How many operations have left the table since it was made.
    removed: u64,
}

impl Table {
    fn add(&mut self, token: Arc<str>, op: RunningOperation) {
        let name = op.principal.name();
        // Looked up first: the name is copied only for a principal's first operation.
        match self.usage.get_mut(name) {
            Some(usage) => {
                usage.running += 1;
                usage.input_bytes = usage.input_bytes.saturating_add(op.input_bytes);
            }
            None => {
                let usage = Usage {
                    running: 1,
                    input_bytes: op.input_bytes,
                };
                self.usage.insert(name.to_owned(), usage);
            }
        }
        crate::observe::metrics::running(&op.names.service, &op.names.operation, 1.0);
        self.ops.insert(token, op);
    }
}

impl RunningOperations {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an operation whatever the quota (a resumed one); `false` if the token is
    /// already in use.
    pub fn insert(&self, token: Arc<str>, op: RunningOperation) -> bool {
        let mut table = self.lock();
        if table.ops.contains_key(&token) {
            return false;
        }
        table.add(token, op);
        true
    }

    /// Registers a new operation if its principal's `quota` allows it: RESOURCE_EXHAUSTED if
    /// not, CONFLICT if the token is already in use.
    pub fn insert_within(
        &self,
        token: Arc<str>,
        op: RunningOperation,
        quota: &Quota,
    ) -> Result<(), HandlerError> {
        let mut table = self.lock();
        if table.ops.contains_key(&token) {
            return Err(HandlerError::conflict(format!(
                "an operation with token `{token}` is already running"
            )));
        }
        let usage = table
            .usage
            .get(op.principal.name())
            .copied()
            .unwrap_or_default();
        quota.admit(&op.principal, usage, op.input_bytes)?;
        table.add(token, op);
        Ok(())
    }

    pub fn remove(&self, token: &str) {
        let mut table = self.lock();
        let Some(op) = table.ops.remove(token) else {
            return;
        };
        table.removed += 1;
        crate::observe::metrics::running(&op.names.service, &op.names.operation, -1.0);
        let name = op.principal.name();
        if let Some(usage) = table.usage.get_mut(name) {
            usage.running = usage.running.saturating_sub(1);
            usage.input_bytes = usage.input_bytes.saturating_sub(op.input_bytes);
            if usage.running == 0 {
                table.usage.remove(name);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().ops.len()
    }

    /// How many operations run here, and how many have ended (left the table) since it was
    /// made, read together.
    pub fn counts(&self) -> (usize, u64) {
        let table = self.lock();
        (table.ops.len(), table.removed)
    }

    /// How many operations the principal named `name` has running here.
    pub fn running_of(&self, name: &str) -> usize {
        self.lock().usage.get(name).map_or(0, |u| u.running)
    }

    /// The cancellation signal of the operation with `token`, checking that `principal` started
    /// it (another principal's operation is [`CancelMiss::Foreign`], before anything else is
    /// said about it) and that it is an operation of `service`/`operation`.
    pub fn cancel_signal(
        &self,
        principal: &Principal,
        service: &str,
        operation: &str,
        token: &str,
    ) -> Result<CancellationToken, CancelMiss> {
        let table = self.lock();
        let op = table.ops.get(token).ok_or(CancelMiss::Unknown)?;
        if op.principal.name() != principal.name() {
            return Err(CancelMiss::Foreign);
        }
        if *op.names.service != *service || *op.names.operation != *operation {
            return Err(CancelMiss::Mismatch {
                service: op.names.service.to_string(),
                operation: op.names.operation.to_string(),
            });
        }
        Ok(op.cancel.clone())
    }

    /// Whether an operation with `token` is running (or reserved).
    pub fn contains(&self, token: &str) -> bool {
        self.lock().ops.contains_key(token)
    }

    /// The cancellation signal of the running operation with `token`, if there is one.
    pub fn signal(&self, token: &str) -> Option<CancellationToken> {
        self.lock().ops.get(token).map(|op| op.cancel.clone())
    }

    /// The tokens of every running operation.
    pub fn tokens(&self) -> Vec<String> {
        self.lock()
            .ops
            .keys()
            .map(|token| token.to_string())
            .collect()
    }
}

pub(crate) fn no_such_operation(request: &CancelRequest) -> HandlerError {
    HandlerError::not_found(format!(
        "no running `{}` operation has token `{}`",
        request.operation, request.token
    ))
}

/// NOT_FOUND for a cancel request from a principal that did not start the operation: the same
/// answer as for an unknown token (logged, since it may be a probe).
pub(crate) fn foreign_operation(principal: &Principal, request: &CancelRequest) -> HandlerError {
    tracing::warn!(
        %principal,
        token = %request.token,
        "refused a cancel request for an operation another caller started"
    );
    no_such_operation(request)
}

pub(crate) fn wrong_operation(
    request: &CancelRequest,
    service: &str,
    operation: &str,
) -> HandlerError {
    HandlerError::not_found(format!(
        "token `{}` belongs to operation `{service}/{operation}`, not `{}/{}`",
        request.token, request.service, request.operation
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> RunningOperation {
        RunningOperation {
            names: OperationNames::new("s", "o"),
            principal: Principal::anonymous(),
            input_bytes: 1,
            cancel: CancellationToken::new(),
        }
    }

    #[test]
    fn counts_tell_what_runs_and_what_ended() {
        let table = RunningOperations::default();
        assert_eq!(table.counts(), (0, 0));
        assert!(table.insert("a".into(), op()));
        assert!(table.insert("b".into(), op()));
        assert!(!table.insert("b".into(), op()), "a token runs once");
        table.remove("a");
        table.remove("a");
        table.remove("unknown");
        assert_eq!(
            table.counts(),
            (1, 1),
            "only what left the table counts as ended"
        );
        table.remove("b");
        assert_eq!(table.counts(), (0, 2));
    }
}
