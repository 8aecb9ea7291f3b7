//! An operation's wire names, shared: one copy per hosted operation (made when the dispatcher
//! is built), not one per running operation.

use std::sync::Arc;

/// The service and operation names of one operation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OperationNames {
    pub service: Box<str>,
    pub operation: Box<str>,
}

impl OperationNames {
    /// Names of their own (for an operation the dispatcher does not host, or a table's entry).
    pub fn new(service: &str, operation: &str) -> Arc<Self> {
        Arc::new(Self {
            service: service.into(),
            operation: operation.into(),
        })
    }
}
