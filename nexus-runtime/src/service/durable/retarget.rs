//! A repeated start answered with an async token re-targets the operation's completion: the same
//! request id is the same caller operation, and the newest start request names where that caller
//! listens now (a restarted process on a new port, or a replica that took over and retried).

use super::{Durable, store_failure};
use crate::clock;
use crate::completion::Callback;
use crate::error::HandlerError;
use crate::security::redact_callback_url;
use crate::store::{RetargetAsync, StoredCallback};

impl Durable {
    /// Makes `callback` (a URL callback of the repeated request) where the completion of
    /// operation `token` goes: the running operation's record, or its delivery still waiting in
    /// the outbox, which is then due at once. Without a URL callback nothing changes. An error
    /// (retryable) if the store could not tell: the caller retries the start, rather than wait
    /// for a completion that goes elsewhere.
    pub async fn retarget(
        &self,
        token: &str,
        callback: Option<&Callback>,
    ) -> Result<(), HandlerError> {
        let Some(Callback::Url { url, headers }) = callback else {
            return Ok(());
        };
        let callback = StoredCallback {
            url: url.clone(),
            headers: headers.clone(),
        };
        let outcome = self
            .handler
            .retarget_async(token, &callback, clock::now())
            .await
            .map_err(|e| {
                store_failure(
                    "cannot move the operation's completion to its new callback",
                    &e,
                )
            })?;
        match outcome {
            RetargetAsync::Updated => {
                tracing::info!(%token, url = %redact_callback_url(url), "the repeated start moved the operation's callback");
            }
            RetargetAsync::Redirected { delivery } => {
                tracing::info!(%token, url = %redact_callback_url(url), %delivery, "the repeated start redirected the completion");
                self.wake_outbox.notify_one();
            }
            RetargetAsync::Unchanged => {}
            RetargetAsync::Settled(state) => {
                tracing::debug!(%token, %state, "the completion was delivered or given up already");
            }
            RetargetAsync::UnknownOperation => {
                tracing::debug!(%token, "the answered operation is no longer recorded");
            }
        }
        Ok(())
    }
}
