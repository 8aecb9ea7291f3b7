//! Attaching to an operation by its id: after a restart, from another replica, or from another
//! part of the same process.

use super::durable::mirror;
use super::pending::Attached;
use super::{Client, OperationHandle, ServiceClient};
use crate::error::CallError;
use crate::operation::Operation;
use crate::service::Service;
use crate::store::{OperationId, StoreError};

/// Why [`Client::attach`] found no handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// No operation has this id in the store: it was never recorded there, or it finished and was
    /// purged after the retention.
    #[error(
        "no operation has id {0} (never recorded in this store, or purged after its retention)"
    )]
    NotFound(OperationId),
    /// The operation is another one than the handle's type says.
    #[error("operation {id} is `{service}/{operation}` on endpoint `{endpoint}`, not `{expected}`")]
    Mismatch {
        /// The operation's id.
        id: OperationId,
        /// Its endpoint.
        endpoint: String,
        /// Its service.
        service: String,
        /// Its operation.
        operation: String,
        /// What the caller asked for (`service/operation`, or `endpoint` for a service client).
        expected: String,
    },
    /// The operation is unfinished but its endpoint is not configured in this client, which
    /// therefore cannot drive it.
    #[error("operation's endpoint `{0}` is not configured in this client")]
    UnknownEndpoint(String),
    /// The store failed, or holds something this build cannot read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client was shut down.
    #[error("the client was shut down")]
    ShutDown,
}

impl From<AttachError> for CallError {
    fn from(e: AttachError) -> Self {
        CallError::Invalid(e.to_string())
    }
}

impl Client {
    /// A handle to operation `id` of type `Op`, scheduled earlier by this process, by a process
    /// before a restart, or by another replica (keep [`OperationHandle::operation_id`] to find it
    /// again). Its `result()` gives what the operation gives, typed errors included.
    ///
    /// An unfinished operation that no task of this process runs is resumed here (or, with
    /// [replicas](crate::client::ReplicaConfig), followed through the store while another replica
    /// holds its lease). A finished one answers at once from its record, until the retention
    /// purges it.
    pub async fn attach<Op: Operation>(
        &self,
        id: OperationId,
    ) -> Result<OperationHandle<Op>, AttachError> {
        self.attach_checked::<Op>(id, None).await
    }

    async fn attach_checked<Op: Operation>(
        &self,
        id: OperationId,
        endpoint: Option<&str>,
    ) -> Result<OperationHandle<Op>, AttachError> {
        let attached = self.attach_any(id).await?;
        let key = &attached.key;
        let service = <Op::Service as Service>::NAME;
        let mismatch = |expected: String| AttachError::Mismatch {
            id,
            endpoint: key.endpoint.to_string(),
            service: key.service.to_string(),
            operation: key.operation.to_string(),
            expected,
        };
        if key.service != service || key.operation != Op::NAME {
            return Err(mismatch(format!("{service}/{}", Op::NAME)));
        }
        if let Some(endpoint) = endpoint
            && &*key.endpoint != endpoint
        {
            return Err(mismatch(format!("endpoint `{endpoint}`")));
        }
        Ok(OperationHandle::from_attached(
            attached,
            self.payload_codec(),
        ))
    }
}

impl Client {
    /// What a handle needs of operation `id`, whatever its type: the task that runs it here, or
    /// its record (an unfinished one is resumed or followed).
    pub(crate) async fn attach_any(&self, id: OperationId) -> Result<Attached, AttachError> {
        if self.is_shut_down() {
            return Err(AttachError::ShutDown);
        }
        self.ensure_caretaker();
        Ok(match self.registry().attach(id) {
            Some(attached) => attached,
            None => {
                let record = self
                    .durability()
                    .store
                    .get(id)
                    .await?
                    .ok_or(AttachError::NotFound(id))?;
                if record.state.is_terminal() {
                    Attached::finished(mirror::record_of(&record), record.request_key())
                } else {
                    self.adopt(record)?.0
                }
            }
        })
    }
}

impl ServiceClient {
    /// A handle to operation `id` of this service on this endpoint (see [`Client::attach`]).
    /// Generated stubs reach it through `service_client()`:
    /// `fraud.service_client().attach::<fraud::CheckTransaction>(id)`.
    pub async fn attach<Op: Operation>(
        &self,
        id: OperationId,
    ) -> Result<OperationHandle<Op>, AttachError> {
        self.client()
            .attach_checked::<Op>(id, Some(self.endpoint()))
            .await
    }
}
