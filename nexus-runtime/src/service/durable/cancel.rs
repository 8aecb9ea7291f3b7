//! Cancel requests with a store: recorded before the work is signalled, and answered for
//! operations this process is not running.

use tokio_util::sync::CancellationToken;

use super::{Durable, store_failure};
use crate::clock;
use crate::error::HandlerError;
use crate::security::Principal;
use crate::service::dispatcher::Dispatcher;
use crate::service::running::{foreign_operation, no_such_operation, wrong_operation};
use crate::transport::CancelRequest;

/// Cancels an operation running here: records the request, then signals the work.
pub(crate) async fn cancel_running(
    durable: &Durable,
    request: &CancelRequest,
    signal: CancellationToken,
) -> Result<(), HandlerError> {
    durable
        .handler
        .request_cancel_async(&request.token, clock::now())
        .await
        .map_err(|e| store_failure("cannot record the cancel request", &e))?;
    signal.cancel();
    Ok(())
}

/// Cancels an operation this process does not run: unknown tokens, and operations another
/// principal started, are NOT_FOUND; a finished
/// operation has nothing left to cancel (accepted: its completion tells how it ended); an
/// unfinished one (run by another replica, or waiting to be resumed or failed after a
/// restart) gets the request recorded, and is resumed with cancellation signalled, or
/// completed as canceled.
pub(crate) async fn cancel_recorded(
    dispatcher: &Dispatcher,
    durable: &Durable,
    principal: &Principal,
    request: &CancelRequest,
) -> Result<(), HandlerError> {
    let record = durable
        .handler
        .get_async(&request.token)
        .await
        .map_err(|e| store_failure("cannot read the operation", &e))?
        .ok_or_else(|| no_such_operation(request))?;
    if record.principal.name() != principal.name() {
        return Err(foreign_operation(principal, request));
    }
    if record.service != request.service || record.operation != request.operation {
        return Err(wrong_operation(request, &record.service, &record.operation));
    }
    if record.state.is_terminal() {
        tracing::debug!(token = %request.token, state = %record.state, "cancel of a finished operation");
        return Ok(());
    }
    durable
        .handler
        .request_cancel_async(&request.token, clock::now())
        .await
        .map_err(|e| store_failure("cannot record the cancel request", &e))?;
    // It may have been resumed here meanwhile.
    if let Ok(signal) = dispatcher.inner.running.cancel_signal(
        principal,
        &request.service,
        &request.operation,
        &request.token,
    ) {
        signal.cancel();
    }
    Ok(())
}
