//! Rows back into records, the same for every database.

use std::collections::BTreeMap;

#[cfg(feature = "postgres")]
use sqlx::Row as _;

use super::{counter, from_json, parse_links};
use crate::codec::Content;
use crate::completion::Completion;
use crate::error::{Failure, OperationError};
use crate::security::{CallbackSecret, Principal, PrincipalKind};
use crate::store::time::{from_micros, opt_from_micros};
use crate::store::{
    AsyncOperationRecord, AsyncState, CallerRecord, Delivery, DeliveryState, Lease,
    OperationDeadlines, OperationState, StartAnswer, StoreError, StoredCallback,
};

/// Typed column reads, with errors that name the column: implemented for PostgreSQL's rows here
/// and for SQLite's in `store/sqlite`.
pub(crate) trait RowExt {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn boolean(&self, column: &str) -> Result<bool, StoreError>;
}

/// A column that cannot be read as asked.
pub(crate) fn column_error(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("column `{column}`: {e}"))
}

#[cfg(feature = "postgres")]
impl RowExt for sqlx::postgres::PgRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
    fn boolean(&self, column: &str) -> Result<bool, StoreError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }
}

fn headers(row: &impl RowExt, column: &str) -> Result<BTreeMap<String, String>, StoreError> {
    from_json(&row.text(column)?, column)
}

fn content(row: &impl RowExt, data: &str, headers_column: &str) -> Result<Content, StoreError> {
    Ok(Content {
        headers: headers(row, headers_column)?.into(),
        data: row.bytes(data)?.into(),
    })
}

fn opt_content(
    row: &impl RowExt,
    data: &str,
    headers_column: &str,
) -> Result<Option<Content>, StoreError> {
    match (row.opt_bytes(data)?, row.opt_text(headers_column)?) {
        (Some(data), Some(h)) => Ok(Some(Content {
            headers: from_json(&h, headers_column)?,
            data: data.into(),
        })),
        (None, None) => Ok(None),
        _ => Err(StoreError::corrupt(format!(
            "`{data}` and `{headers_column}` must be both set or both null"
        ))),
    }
}

fn opt_failure(row: &impl RowExt, column: &str) -> Result<Option<Box<Failure>>, StoreError> {
    row.opt_text(column)?
        .map(|text| from_json(&text, column).map(Box::new))
        .transpose()
}

fn time(row: &impl RowExt, column: &str) -> Result<std::time::SystemTime, StoreError> {
    from_micros(row.int(column)?)
}

fn opt_time(row: &impl RowExt, column: &str) -> Result<Option<std::time::SystemTime>, StoreError> {
    opt_from_micros(row.opt_int(column)?)
}

fn uuid(row: &impl RowExt, column: &str) -> Result<uuid::Uuid, StoreError> {
    let text = row.text(column)?;
    uuid::Uuid::parse_str(&text)
        .map_err(|e| StoreError::corrupt(format!("column `{column}`: `{text}` is no UUID: {e}")))
}

fn lease(row: &impl RowExt) -> Result<Option<Lease>, StoreError> {
    match (
        row.opt_text("lease_owner")?,
        opt_time(row, "lease_expires_at_us")?,
    ) {
        (Some(owner), Some(expires_at)) => Ok(Some(Lease { owner, expires_at })),
        (None, None) => Ok(None),
        _ => Err(StoreError::corrupt(
            "`lease_owner` and `lease_expires_at_us` must be both set or both null",
        )),
    }
}

/// A `caller_operations` row.
pub(crate) fn caller_from_row(row: &impl RowExt) -> Result<CallerRecord, StoreError> {
    let state = row.text("state")?;
    Ok(CallerRecord {
        id: uuid(row, "id")?,
        endpoint: row.text("endpoint")?,
        service: row.text("service")?,
        operation: row.text("operation")?,
        request_id: row.text("request_id")?,
        input: content(row, "input_data", "input_headers")?,
        options: from_json(&row.text("options")?, "options")?,
        state: OperationState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(format!("unknown operation state `{state}`")))?,
        version: counter(row.int("version")?, "version")?,
        attempt: counter(row.int("attempt")?, "attempt")?,
        next_attempt_at: opt_time(row, "next_attempt_at_us")?,
        last_failure: opt_failure(row, "last_failure")?,
        target: row.opt_text("target")?,
        token: row.opt_text("token")?,
        start_links: parse_links(&row.text("start_links")?, "start_links")?,
        result: opt_content(row, "result_data", "result_headers")?,
        error: opt_failure(row, "error")?,
        completion_links: parse_links(&row.text("completion_links")?, "completion_links")?,
        cancel_requested_at: opt_time(row, "cancel_requested_at_us")?,
        scheduled_at: time(row, "scheduled_at_us")?,
        started_at: opt_time(row, "started_at_us")?,
        closed_at: opt_time(row, "closed_at_us")?,
        deadlines: OperationDeadlines {
            schedule_to_close: opt_time(row, "schedule_to_close_deadline_us")?,
            schedule_to_start: opt_time(row, "schedule_to_start_deadline_us")?,
            start_to_close: opt_time(row, "start_to_close_deadline_us")?,
        },
        lease: lease(row)?,
        callback_secret: row
            .opt_text("callback_secret")?
            .and_then(CallbackSecret::from_stored),
    })
}

/// The answer columns of a `handler_starts` row, if it was answered.
pub(crate) fn start_answer_from_row(row: &impl RowExt) -> Result<Option<StartAnswer>, StoreError> {
    let Some(kind) = row.opt_text("answer")? else {
        return Ok(None);
    };
    let links = || {
        row.opt_text("links")?
            .map(|l| parse_links(&l, "links"))
            .unwrap_or_else(|| Ok(Vec::new()))
    };
    let answer = match kind.as_str() {
        "sync" => StartAnswer::Sync {
            output: opt_content(row, "output_data", "output_headers")?
                .ok_or_else(|| StoreError::corrupt("a sync answer without its output"))?,
            links: links()?,
        },
        "async" => StartAnswer::Async {
            token: row
                .opt_text("token")?
                .ok_or_else(|| StoreError::corrupt("an async answer without its token"))?,
            links: links()?,
        },
        "failed" => StartAnswer::Failed(
            *opt_failure(row, "failure")?
                .ok_or_else(|| StoreError::corrupt("a failed answer without its failure"))?,
        ),
        other => {
            return Err(StoreError::corrupt(format!(
                "unknown answer kind `{other}`"
            )));
        }
    };
    Ok(Some(answer))
}

/// A `handler_operations` row.
pub(crate) fn async_from_row(row: &impl RowExt) -> Result<AsyncOperationRecord, StoreError> {
    let state = row.text("state")?;
    let callback = match row.opt_text("callback_url")? {
        Some(url) => Some(StoredCallback {
            url,
            headers: from_json(
                &row.opt_text("callback_headers")?
                    .unwrap_or_else(|| "{}".into()),
                "callback_headers",
            )?,
        }),
        None => None,
    };
    Ok(AsyncOperationRecord {
        token: row.text("token")?,
        service: row.text("service")?,
        operation: row.text("operation")?,
        request_id: row.text("request_id")?,
        principal: principal(row)?,
        input: content(row, "input_data", "input_headers")?,
        headers: headers(row, "headers")?,
        links: parse_links(&row.text("links")?, "links")?,
        callback,
        state: AsyncState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(format!("unknown async state `{state}`")))?,
        resumable: row.boolean("resumable")?,
        cancel_requested_at: opt_time(row, "cancel_requested_at_us")?,
        deadline: opt_time(row, "deadline_us")?,
        started_at: time(row, "started_at_us")?,
        closed_at: opt_time(row, "closed_at_us")?,
        lease: lease(row)?,
    })
}

/// The principal of a `handler_operations` row.
fn principal(row: &impl RowExt) -> Result<Principal, StoreError> {
    let kind = row.text("principal_kind")?;
    let kind = PrincipalKind::parse(&kind)
        .ok_or_else(|| StoreError::corrupt(format!("unknown principal kind `{kind}`")))?;
    Ok(Principal::new(row.text("principal")?, kind))
}

/// A `completion_deliveries` row.
pub(crate) fn delivery_from_row(row: &impl RowExt) -> Result<Delivery, StoreError> {
    let outcome = row.text("outcome")?;
    let outcome = match outcome.as_str() {
        "succeeded" => Ok(opt_content(row, "result_data", "result_headers")?
            .ok_or_else(|| StoreError::corrupt("a succeeded delivery without its result"))?),
        "failed" | "canceled" => {
            let failure = opt_failure(row, "failure")?
                .ok_or_else(|| StoreError::corrupt("a failed delivery without its failure"))?;
            Err(OperationError::from_failure(&failure).ok_or_else(|| {
                StoreError::corrupt("a delivery's failure is not an OperationError")
            })?)
        }
        other => return Err(StoreError::corrupt(format!("unknown outcome `{other}`"))),
    };
    let state = row.text("state")?;
    Ok(Delivery {
        id: uuid(row, "id")?,
        url: row.text("url")?,
        headers: headers(row, "headers")?,
        completion: Completion {
            token: row.text("token")?,
            outcome,
            links: parse_links(&row.text("links")?, "links")?,
            start_time: opt_time(row, "start_time_us")?,
            close_time: opt_time(row, "close_time_us")?,
        },
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(format!("unknown delivery state `{state}`")))?,
        attempts: counter(row.int("attempts")?, "attempts")?,
        next_attempt_at: time(row, "next_attempt_at_us")?,
        last_error: row.opt_text("last_error")?,
        created_at: time(row, "created_at_us")?,
        finished_at: opt_time(row, "finished_at_us")?,
    })
}
