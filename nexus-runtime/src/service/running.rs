//! The table of async operations a dispatcher is running, keyed by operation token. A token is
//! reserved here before its operation is recorded in a store, and removed only after its
//! completion is recorded, so that recovery never takes a live operation for an abandoned one.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// One async operation in flight.
#[derive(Debug)]
pub(crate) struct RunningOperation {
    pub service: String,
    pub operation: String,
    pub cancel: CancellationToken,
}

/// Why a cancel request found nothing to cancel.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelMiss {
    /// No running operation has this token.
    Unknown,
    /// The token belongs to another service or operation.
    Mismatch { service: String, operation: String },
}

#[derive(Debug, Default)]
pub(crate) struct RunningOperations {
    ops: Mutex<HashMap<String, RunningOperation>>,
}

impl RunningOperations {
    /// Registers an operation; `false` if the token is already in use.
    pub fn insert(&self, token: &str, op: RunningOperation) -> bool {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        if ops.contains_key(token) {
            return false;
        }
        ops.insert(token.to_owned(), op);
        true
    }

    pub fn remove(&self, token: &str) {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    pub fn len(&self) -> usize {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The cancellation signal of the operation with `token`, checking that it is an operation
    /// of `service`/`operation`.
    pub fn cancel_signal(
        &self,
        service: &str,
        operation: &str,
        token: &str,
    ) -> Result<CancellationToken, CancelMiss> {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let op = ops.get(token).ok_or(CancelMiss::Unknown)?;
        if op.service != service || op.operation != operation {
            return Err(CancelMiss::Mismatch {
                service: op.service.clone(),
                operation: op.operation.clone(),
            });
        }
        Ok(op.cancel.clone())
    }

    /// Whether an operation with `token` is running (or reserved).
    pub fn contains(&self, token: &str) -> bool {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(token)
    }

    /// The tokens and cancellation signals of the running operations not signalled yet.
    pub fn uncancelled(&self) -> Vec<(String, CancellationToken)> {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, op)| !op.cancel.is_cancelled())
            .map(|(token, op)| (token.clone(), op.cancel.clone()))
            .collect()
    }

    /// The tokens of every running operation.
    pub fn tokens(&self) -> Vec<String> {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}
