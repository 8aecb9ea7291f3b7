//! The outbox sender: delivers the completions enqueued in the store to their callback URLs, one
//! attempt of the dispatcher's completion sender per claim, and records what happened. Every
//! attempt runs on its own task (up to `OutboxOptions::concurrency` at once), so a receiver that
//! is slow or never answers delays only its own deliveries.

use std::sync::{Arc, Weak};

use tokio::task::JoinSet;

use super::Durable;
use crate::clock;
use crate::completion::CompletionSender;
use crate::machinery::RetrySchedule;
use crate::security::CallbackGuard;
use crate::security::redact_callback_url;
use crate::service::dispatcher::{Dispatcher, Inner};
use crate::store::Delivery;

/// Starts the outbox sender of `dispatcher`; it ends when the dispatcher stops or is dropped.
pub(crate) fn spawn_outbox(dispatcher: &Dispatcher, durable: Arc<Durable>) {
    let weak = Arc::downgrade(&dispatcher.inner);
    tokio::spawn(run(weak, durable));
}

async fn run(weak: Weak<Inner>, durable: Arc<Durable>) {
    let mut warned = false;
    // The attempts in flight, each on its own task: dropped (aborted) when the loop ends; an
    // attempt cut short leaves its delivery claimed until the claim's visibility ends.
    let mut attempts = JoinSet::new();
    // Whether the last drain stopped at the bound on attempts in flight: then the end of an
    // attempt makes room for more.
    let mut saturated = false;
    let mut check = true;
    loop {
        if check {
            // Holds no strong reference while waiting, so dropping the dispatcher stops the loop.
            let (sender, guard) = match weak.upgrade() {
                Some(inner) => {
                    let dispatcher = Dispatcher { inner };
                    let guard = dispatcher.callback_guard().clone();
                    (dispatcher.completion_sender(), guard)
                }
                None => return,
            };
            match sender {
                Some(sender) => {
                    saturated = drain(&durable, &sender, &guard, &mut attempts).await;
                }
                None if !warned => {
                    warned = true;
                    tracing::debug!(
                        "no completion sender yet: completions to URLs wait in the outbox"
                    );
                }
                None => {}
            }
        }
        check = tokio::select! {
            _ = durable.stop.cancelled() => return,
            _ = durable.wake_outbox.notified() => true,
            _ = tokio::time::sleep(durable.options.outbox.poll_interval) => true,
            Some(_) = attempts.join_next(), if !attempts.is_empty() => saturated,
        };
        while attempts.try_join_next().is_some() {}
    }
}

/// Starts an attempt of every due delivery, a claim at a time, while fewer than the bound are in
/// flight. Returns whether it stopped at that bound (more may be due).
async fn drain(
    durable: &Arc<Durable>,
    sender: &Arc<dyn CompletionSender>,
    guard: &CallbackGuard,
    attempts: &mut JoinSet<()>,
) -> bool {
    let options = &durable.options.outbox;
    loop {
        if durable.is_stopped() {
            return false;
        }
        let room = options.concurrency.saturating_sub(attempts.len());
        if room == 0 {
            return true;
        }
        let wanted = room.min(options.batch);
        let claimed = durable
            .outbox
            .claim_due_deliveries(clock::now(), options.visibility, wanted)
            .await;
        let batch = match claimed {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the completion outbox");
                return false;
            }
        };
        let full = batch.len() >= wanted;
        crate::observe::metrics::outbox_due(batch.len());
        for delivery in batch {
            let (durable, sender, guard) = (durable.clone(), sender.clone(), guard.clone());
            attempts.spawn(async move { attempt(&durable, &sender, &guard, delivery).await });
        }
        if !full {
            return false;
        }
    }
}

/// One attempt of one delivery, and its bookkeeping. A bookkeeping write that fails leaves the
/// delivery pending: it is tried again once its claim's visibility ends (at least once). A
/// failure is not recorded if the delivery was redirected to another callback meanwhile (a
/// repeated start): the redirected delivery is due at once. A delivery the callback guard refuses
/// (recorded before its rules changed) is given up without an attempt.
async fn attempt(
    durable: &Durable,
    sender: &Arc<dyn CompletionSender>,
    guard: &CallbackGuard,
    delivery: Delivery,
) {
    let options = &durable.options.outbox;
    let id = delivery.id;
    let token = delivery.completion.token.clone();
    let expires_at = delivery.created_at + options.max_age;
    let expired = |error: &str| {
        format!(
            "expired: not delivered within {} (last error: {error})",
            humantime::format_duration(options.max_age)
        )
    };
    if clock::now() >= expires_at {
        let last = delivery.last_error.as_deref().unwrap_or("none");
        mark_dead(durable, &delivery, &expired(last)).await;
        return;
    }
    let headers = delivery
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    if let Err(refusal) = guard.check_callback(&delivery.url, headers) {
        mark_dead(durable, &delivery, &format!("not sent: {refusal}")).await;
        return;
    }
    let bound = options.visibility / 2;
    let sent = tokio::time::timeout(
        bound,
        sender.send(
            delivery.url.clone(),
            delivery.headers.clone(),
            delivery.completion.clone(),
        ),
    )
    .await;
    let now = clock::now();
    let error = match sent {
        Ok(Ok(())) => {
            tracing::debug!(%token, url = %redact_callback_url(&delivery.url), "completion delivered");
            if let Err(e) = durable.outbox.mark_delivered(id, now).await {
                tracing::warn!(%token, error = %e, "cannot record a delivered completion");
            }
            return;
        }
        Ok(Err(e)) if !e.is_retryable() => {
            let message = format!("failed for good, not retried: {e}");
            mark_dead(durable, &delivery, &message).await;
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer from the callback URL within {bound:?}"),
    };
    let attempts = delivery.attempts + 1;
    let schedule = RetrySchedule::of_policy(&options.retry, &options.jitter);
    let Some(delay) = schedule.next_delay(attempts) else {
        let message = format!("gave up after {attempts} attempts: {error}");
        mark_dead(durable, &delivery, &message).await;
        return;
    };
    let next = now + delay;
    if next >= expires_at {
        mark_dead(durable, &delivery, &expired(&error)).await;
        return;
    }
    tracing::warn!(%token, url = %redact_callback_url(&delivery.url), attempts, ?delay, %error, "completion not delivered; will retry");
    crate::observe::metrics::outbox_failed();
    match durable.outbox.mark_retry(&delivery, next, &error).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(%token, "the delivery was redirected or done meanwhile"),
        Err(e) => tracing::warn!(%token, error = %e, "cannot record a failed delivery attempt"),
    }
}

async fn mark_dead(durable: &Durable, delivery: &Delivery, reason: &str) {
    let token = &delivery.completion.token;
    match durable
        .outbox
        .mark_dead(delivery, clock::now(), reason)
        .await
    {
        Ok(true) => {
            crate::observe::metrics::outbox_dead();
            tracing::error!(%token, url = %redact_callback_url(&delivery.url), %reason, "completion given up")
        }
        Ok(false) => tracing::info!(
            %token,
            url = %redact_callback_url(&delivery.url),
            %reason,
            "not giving the completion up: it was redirected or done meanwhile"
        ),
        Err(e) => tracing::warn!(%token, error = %e, "cannot record a dead delivery"),
    }
}
