//! Listing a client's operations for operators ([`Client::operations`]) and canceling one by id
//! ([`Client::cancel_operation`]), whatever its type.

use std::time::SystemTime;

use tokio::sync::oneshot;

use super::Client;
use super::attach::AttachError;
use super::driver::{Command, Record};
use super::durable::mirror;
use super::durable::options::StoredOptions;
use super::info::{OperationInfo, OperationState};
use super::pending::Inbound;
use crate::clock;
use crate::error::CallError;
use crate::link::Link;
use crate::store::listing::{admits, is_after, page_size};
use crate::store::{
    CallerQuery, CallerRecord, Cursor, OperationId, RequestKey, StoreError, caller_cursor,
};

/// Which operations [`Client::operations`] lists: filters and a page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationFilter {
    /// Only these states (all when empty); `Blocked` covers every blocked reason.
    pub states: Vec<OperationState>,
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only this service (wire name).
    pub service: Option<String>,
    /// At most this many ([`DEFAULT_PAGE`](crate::store::DEFAULT_PAGE) when 0, at most
    /// [`MAX_PAGE`](crate::store::MAX_PAGE)).
    pub limit: usize,
    /// Where the page starts: the previous page's [`OperationPage::next_cursor`].
    pub cursor: Option<String>,
}

impl OperationFilter {
    /// The unfinished operations: scheduled, backing off, blocked or started.
    pub fn pending() -> Self {
        Self {
            states: OperationState::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .collect(),
            ..Self::default()
        }
    }
}

/// One operation in a listing: what identifies it and what its handle's
/// [`info`](super::OperationHandle::info) shows.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OperationSummary {
    /// Its id (also its callback id).
    pub id: OperationId,
    /// The endpoint it runs on.
    pub endpoint: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// Its request id.
    pub request_id: String,
    /// When it was scheduled (wall clock).
    pub scheduled_at: SystemTime,
    /// Where it is: state, attempt, last failure, next attempt, token, the links received.
    pub info: OperationInfo,
    /// The links sent with its start (the call's, and the caller's link to itself), when
    /// recorded (a client without a store or retention does not record them).
    pub sent_links: Vec<Link>,
}

/// A page of [`Client::operations`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OperationPage {
    /// The operations, oldest scheduled first.
    pub operations: Vec<OperationSummary>,
    /// The cursor of the next page, when this one is full.
    pub next_cursor: Option<String>,
}

impl Client {
    /// A page of this client's operations that `filter` selects, oldest scheduled first: those
    /// in its store (finished ones until the retention purges them), showing what their handles
    /// show. An operation running in this process shows its live state (a blocked operation's
    /// reason, a cancellation's progress); the others show their record. A client without a
    /// store or retention keeps nothing once an operation ends: it lists the operations running
    /// in this process.
    ///
    /// Errors: [`StoreError::Invalid`] for a cursor that is not one, or the store's error.
    pub async fn operations(&self, filter: &OperationFilter) -> Result<OperationPage, StoreError> {
        let after = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
        let limit = page_size(filter.limit);
        let operations = if self.durability().keeps_nothing() {
            self.running_operations(filter, after.as_ref(), limit)
        } else {
            let query = CallerQuery {
                states: filter.states.clone(),
                endpoint: filter.endpoint.clone(),
                service: filter.service.clone(),
                after,
                limit,
            };
            let records = self.durability().store.list_operations(&query).await?;
            records.iter().map(|r| self.summary_of(r)).collect()
        };
        let next_cursor = (operations.len() == limit)
            .then(|| operations.last())
            .flatten()
            .map(|last: &OperationSummary| caller_cursor(last.scheduled_at, last.id).encode());
        Ok(OperationPage {
            operations,
            next_cursor,
        })
    }

    /// Operation `id` as [`operations`](Self::operations) shows it; `None` if it is unknown (or
    /// ended and was not kept).
    pub async fn operation(&self, id: OperationId) -> Result<Option<OperationSummary>, StoreError> {
        if self.durability().keeps_nothing() {
            let filter = OperationFilter::default();
            return Ok(self
                .running_operations(&filter, None, usize::MAX)
                .into_iter()
                .find(|o| o.id == id));
        }
        let record = self.durability().store.get(id).await?;
        Ok(record.map(|r| self.summary_of(&r)))
    }

    /// Asks operation `id` to cancel, whatever its type, as its handle's
    /// [`cancel`](super::OperationHandle::cancel) does (an operation that ended already is left
    /// alone). Errors: [`CallError::Invalid`] for an unknown id, or the cancel request's error.
    pub async fn cancel_operation(&self, id: OperationId) -> Result<(), CallError> {
        let attached = self.attach_any(id).await.map_err(|e| match e {
            AttachError::NotFound(_) => CallError::Invalid(format!("no operation has id {id}")),
            e => e.into(),
        })?;
        if attached.record.borrow().outcome.is_some() {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        if attached
            .commands
            .send(Inbound::Command(Command::Cancel(reply)))
            .is_err()
        {
            return Ok(());
        }
        done.await.unwrap_or(Ok(()))
    }

    /// One stored operation as a listing shows it: its live state when it runs here.
    fn summary_of(&self, record: &CallerRecord) -> OperationSummary {
        let shown = self
            .registry()
            .shown(record.id)
            .unwrap_or_else(|| mirror::record_of(record));
        let sent_links = StoredOptions::from_json(&record.options)
            .map(|options| options.links())
            .unwrap_or_default();
        OperationSummary {
            id: record.id,
            endpoint: record.endpoint.clone(),
            service: record.service.clone(),
            operation: record.operation.clone(),
            request_id: record.request_id.clone(),
            scheduled_at: record.scheduled_at,
            info: shown.info.clone(),
            sent_links,
        }
    }

    /// The operations running in this process (a client that records nothing), as a page.
    fn running_operations(
        &self,
        filter: &OperationFilter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Vec<OperationSummary> {
        let mut selected: Vec<(SystemTime, String, RequestKey, Record)> = self
            .registry()
            .snapshot()
            .into_iter()
            .filter(|(key, record)| {
                admits(&filter.states, &record.info.state)
                    && filter
                        .endpoint
                        .as_deref()
                        .is_none_or(|e| e == &*key.endpoint)
                    && filter.service.as_deref().is_none_or(|s| s == key.service)
            })
            .map(|(key, record)| {
                let at = micros(clock::wall_at(record.info.scheduled_at));
                (at, record.id.to_string(), key.to_request_key(), record)
            })
            .filter(|(at, id, _, _)| is_after(after, *at, id))
            .collect();
        selected.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        selected
            .into_iter()
            .take(limit)
            .map(|(at, _, key, record)| OperationSummary {
                id: record.id,
                endpoint: key.endpoint,
                service: key.service,
                operation: key.operation,
                request_id: key.request_id,
                scheduled_at: at,
                info: record.info.clone(),
                sent_links: Vec::new(),
            })
            .collect()
    }
}

/// `t` truncated to whole microseconds, as cursors keep times.
fn micros(t: SystemTime) -> SystemTime {
    crate::store::time::truncate(t).unwrap_or(t)
}
