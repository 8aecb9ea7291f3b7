//! What the JSON API shows of records: plain serializable views, with times in RFC 3339, tokens
//! shortened and callback secrets redacted.

use std::time::SystemTime;

use serde::Serialize;

use crate::client::OperationSummary;
use crate::clock;
use crate::link::Link;
use crate::protocol::format_rfc3339;
use crate::security::redact_callback_url;
use crate::store::{AsyncOperationRecord, Delivery};

/// A link as JSON.
#[derive(Serialize)]
pub(crate) struct LinkView {
    url: String,
    #[serde(rename = "type")]
    link_type: String,
}

fn links(links: &[Link]) -> Vec<LinkView> {
    links
        .iter()
        .map(|l| LinkView {
            url: l.url.clone(),
            link_type: l.link_type.clone(),
        })
        .collect()
}

fn time(t: SystemTime) -> String {
    format_rfc3339(t)
}

/// An operation token, shortened to its last six characters: enough to tell operations apart,
/// not enough to use one. The end, not the start: the tokens made here are time-ordered
/// (`crate::id`), so those made within hours of each other start alike and end at random.
pub(crate) fn token_hint(token: &str) -> String {
    let count = token.chars().count();
    if count <= 6 {
        return "…".to_owned();
    }
    let shown: String = token.chars().skip(count - 6).collect();
    format!("…{shown}")
}

/// A caller's operation.
#[derive(Serialize)]
pub(crate) struct OperationView {
    id: String,
    endpoint: String,
    service: String,
    operation: String,
    request_id: String,
    state: &'static str,
    blocked_reason: Option<String>,
    attempt: u32,
    last_failure: Option<String>,
    next_attempt_at: Option<String>,
    token: Option<String>,
    scheduled_at: String,
    started_at: Option<String>,
    closed_at: Option<String>,
    cancel_requested: bool,
    sent_links: Vec<LinkView>,
    start_links: Vec<LinkView>,
    completion_links: Vec<LinkView>,
}

impl From<&OperationSummary> for OperationView {
    fn from(o: &OperationSummary) -> Self {
        let info = &o.info;
        Self {
            id: o.id.to_string(),
            endpoint: o.endpoint.clone(),
            service: o.service.clone(),
            operation: o.operation.clone(),
            request_id: o.request_id.clone(),
            state: info.state.as_str(),
            blocked_reason: info.blocked_reason.clone(),
            attempt: info.attempt,
            last_failure: info.last_failure.as_ref().map(ToString::to_string),
            next_attempt_at: info.next_attempt_at.map(|t| time(clock::system_at(t))),
            token: info.token.as_deref().map(token_hint),
            scheduled_at: time(o.scheduled_at),
            started_at: info.started_at.map(|t| time(clock::system_at(t))),
            closed_at: info.closed_at.map(|t| time(clock::system_at(t))),
            cancel_requested: info.cancellation.is_some(),
            sent_links: links(&o.sent_links),
            start_links: links(&info.start_links),
            completion_links: links(&info.completion_links),
        }
    }
}

/// A handler's async operation.
#[derive(Serialize)]
pub(crate) struct HandlerOperationView {
    token: String,
    service: String,
    operation: String,
    request_id: String,
    principal: String,
    state: &'static str,
    started_at: String,
    closed_at: Option<String>,
    deadline: Option<String>,
    cancel_requested_at: Option<String>,
    callback: Option<String>,
    links: Vec<LinkView>,
}

impl From<&AsyncOperationRecord> for HandlerOperationView {
    fn from(r: &AsyncOperationRecord) -> Self {
        Self {
            token: token_hint(&r.token),
            service: r.service.clone(),
            operation: r.operation.clone(),
            request_id: r.request_id.clone(),
            principal: r.principal.to_string(),
            state: r.state.as_str(),
            started_at: time(r.started_at),
            closed_at: r.closed_at.map(time),
            deadline: r.deadline.map(time),
            cancel_requested_at: r.cancel_requested_at.map(time),
            callback: r
                .callback
                .as_ref()
                .map(|c| redact_callback_url(&c.url).into_owned()),
            links: links(&r.links),
        }
    }
}

/// A completion delivery.
#[derive(Serialize)]
pub(crate) struct DeliveryView {
    id: String,
    token: String,
    outcome: &'static str,
    url: String,
    state: &'static str,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    links: Vec<LinkView>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            token: token_hint(&d.completion.token),
            outcome: match &d.completion.outcome {
                Ok(_) => "succeeded",
                Err(e) if e.is_canceled() => "canceled",
                Err(_) => "failed",
            },
            url: redact_callback_url(&d.url).into_owned(),
            state: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: (d.state == crate::store::DeliveryState::Pending)
                .then(|| time(d.next_attempt_at)),
            last_error: d.last_error.clone(),
            created_at: time(d.created_at),
            finished_at: d.finished_at.map(time),
            links: links(&d.completion.links),
        }
    }
}

/// A page of the API.
#[derive(Serialize)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hints_tell_time_ordered_tokens_apart() {
        let tokens: Vec<String> = (0..100)
            .map(|_| crate::id::new_v7().simple().to_string())
            .collect();
        let hints: std::collections::HashSet<String> =
            tokens.iter().map(|t| token_hint(t)).collect();
        assert!(hints.len() >= 99, "{hints:?}");
        let hint = token_hint(&tokens[0]);
        assert_eq!(hint.chars().count(), 7, "{hint}");
        assert!(tokens[0].ends_with(hint.trim_start_matches('…')), "{hint}");
        assert_eq!(
            token_hint("abcdef"),
            "…",
            "a short token is not shown at all"
        );
        assert_eq!(token_hint("é-abcdefgh"), "…cdefgh");
    }
}
