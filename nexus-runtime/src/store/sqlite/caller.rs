//! [`CallerStore`] on SQLite: one statement per transition; the follow-up read of a write that
//! did not apply runs on the writer thread, in the same transaction.

use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use rusqlite::types::Value;

use super::SqliteStore;
use super::rows::{
    Params, blob, execute, finished, limit_param, opt_int, opt_text, query_all, query_opt, text,
    unfinished,
};
use crate::completion::Completion;
use crate::store::sql::{
    RowExt as _, caller_from_row, failure_json, headers_json, limit, links_json, parse_uuid,
    sorted_records, to_json, version_param,
};
use crate::store::time::{expiry_micros, from_micros, opt_to_micros, to_micros};
use crate::store::{
    AppliedCompletion, CallerQuery, CallerRecord, CallerStore, CancelRequestOutcome,
    CompletionOutcome, InsertOutcome, Lease, OperationId, RequestKey, StoreError, StoreFuture,
};

const INSERT: &str = "INSERT INTO caller_operations (id, endpoint, service, operation, \
     request_id, input_data, input_headers, options, state, version, attempt, \
     next_attempt_at_us, last_failure, target, token, start_links, result_data, result_headers, \
     error, completion_links, cancel_requested_at_us, scheduled_at_us, started_at_us, \
     closed_at_us, schedule_to_close_deadline_us, schedule_to_start_deadline_us, \
     start_to_close_deadline_us, lease_owner, lease_expires_at_us, callback_secret) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) \
     ON CONFLICT (endpoint, service, operation, request_id) DO NOTHING";

/// The compare-and-set of [`CallerStore::update`]. What the record cannot know by itself (its new
/// version, its lease) is read after it ([`UPDATED`]), in the same transaction: a `RETURNING`
/// clause would gather its row in a temporary table, made and dropped at every transition.
const UPDATE: &str = concat!(
    "UPDATE caller_operations SET state = ?3, version = version + 1, \
     attempt = ?4, next_attempt_at_us = ?5, last_failure = ?6, target = ?7, \
     token = ?8, start_links = ?9, result_data = ?10, result_headers = ?11, \
     error = ?12, completion_links = ?13, cancel_requested_at_us = ?14, \
     started_at_us = ?15, closed_at_us = ?16, schedule_to_close_deadline_us = ?17, \
     schedule_to_start_deadline_us = ?18, start_to_close_deadline_us = ?19, \
     lease_owner = CASE WHEN ?20 THEN NULL ELSE lease_owner END, \
     lease_expires_at_us = CASE WHEN ?20 THEN NULL ELSE lease_expires_at_us END \
     WHERE id = ?1 AND version = ?2 AND ",
    unfinished!()
);

/// What an update gives back (see [`UPDATE`]).
const UPDATED: &str =
    "SELECT version, lease_owner, lease_expires_at_us FROM caller_operations_leased WHERE id = ?1";

const BY_ID: &str = "SELECT * FROM caller_operations_leased WHERE id = ?1";

const BY_KEY: &str = "SELECT * FROM caller_operations_leased WHERE endpoint = ?1 AND service = ?2 \
     AND operation = ?3 AND request_id = ?4";

const UNFINISHED: &str = concat!(
    "SELECT * FROM caller_operations_leased WHERE ",
    unfinished!(),
    " ORDER BY scheduled_at_us, id"
);

const REQUEST_CANCEL: &str = concat!(
    "UPDATE caller_operations SET cancel_requested_at_us = ?2, version = version + 1 \
     WHERE id = ?1 AND cancel_requested_at_us IS NULL AND ",
    unfinished!()
);

/// A completion: the token it names fills a record that has none yet. What the completion does
/// not say of the record (its version, its token) is read after it ([`COMPLETED`]), in the same
/// transaction (no `RETURNING`, which SQLite gathers in a temporary table).
const COMPLETE: &str = concat!(
    "UPDATE caller_operations SET state = ?2, version = version + 1, \
     token = COALESCE(token, ?3), result_data = ?4, result_headers = ?5, \
     error = ?6, completion_links = ?7, closed_at_us = ?8, \
     next_attempt_at_us = NULL, lease_owner = NULL, lease_expires_at_us = NULL \
     WHERE id = ?1 AND (token IS NULL OR ?3 IS NULL OR token = ?3) AND ",
    unfinished!()
);

/// What a completion gives back (see [`COMPLETE`]).
const COMPLETED: &str = "SELECT version, token FROM caller_operations WHERE id = ?1";

/// Leases the oldest unfinished operations nobody holds (or whose lease expired: its own expiry
/// and its owner's heartbeat both past).
pub(super) const CLAIM: &str = concat!(
    "UPDATE caller_operations SET lease_owner = ?1, lease_expires_at_us = ?2, \
     version = version + 1 WHERE id IN (SELECT id FROM caller_operations_leased \
     WHERE (lease_owner IS NULL OR lease_expires_at_us <= ?3) AND ",
    unfinished!(),
    " ORDER BY scheduled_at_us, id",
    limit_param!("?4"),
    ") RETURNING *"
);

/// An owner's heartbeat (`?1`, until `?2`): what keeps every lease it holds live.
const HEARTBEAT: &str = crate::store::sql::heartbeat_sql!("caller_owners", "?1", "?2");

/// The unfinished operations an owner (`?1`) holds a lease on.
const LEASED: &str = concat!(
    "SELECT id FROM caller_operations WHERE lease_owner = ?1 AND ",
    unfinished!()
);

const PURGE_FINISHED: &str = concat!(
    "DELETE FROM caller_operations WHERE closed_at_us < ?1 AND ",
    finished!()
);

fn by_id(conn: &Connection, id: &str) -> Result<Option<CallerRecord>, StoreError> {
    query_opt(conn, BY_ID, &[text(id)], |row| caller_from_row(row))
}

fn key_params(key: &RequestKey) -> Params {
    vec![
        text(key.endpoint.as_str()),
        text(key.service.as_str()),
        text(key.operation.as_str()),
        text(key.request_id.as_str()),
    ]
}

fn insert_params(r: &CallerRecord) -> Result<Params, StoreError> {
    let d = &r.deadlines;
    Ok(vec![
        text(r.id.to_string()),
        text(r.endpoint.as_str()),
        text(r.service.as_str()),
        text(r.operation.as_str()),
        text(r.request_id.as_str()),
        blob(r.input.data.to_vec()),
        text(headers_json(&r.input.headers)?),
        text(to_json(&r.options)?),
        text(r.state.as_str()),
        Value::Integer(version_param(r.version)?),
        Value::Integer(i64::from(r.attempt)),
        opt_int(opt_to_micros(r.next_attempt_at)?),
        opt_text(r.last_failure.as_deref().map(failure_json).transpose()?),
        opt_text(r.target.as_deref()),
        opt_text(r.token.as_deref()),
        text(links_json(&r.start_links)?),
        r.result
            .as_ref()
            .map_or(Value::Null, |c| blob(c.data.to_vec())),
        opt_text(
            r.result
                .as_ref()
                .map(|c| headers_json(&c.headers))
                .transpose()?,
        ),
        opt_text(r.error.as_deref().map(failure_json).transpose()?),
        text(links_json(&r.completion_links)?),
        opt_int(opt_to_micros(r.cancel_requested_at)?),
        Value::Integer(to_micros(r.scheduled_at)?),
        opt_int(opt_to_micros(r.started_at)?),
        opt_int(opt_to_micros(r.closed_at)?),
        opt_int(opt_to_micros(d.schedule_to_close)?),
        opt_int(opt_to_micros(d.schedule_to_start)?),
        opt_int(opt_to_micros(d.start_to_close)?),
        opt_text(r.lease.as_ref().map(|l| l.owner.as_str())),
        opt_int(opt_to_micros(r.lease.as_ref().map(|l| l.expires_at))?),
        opt_text(r.callback_secret.as_ref().map(|s| s.expose())),
    ])
}

fn update_params(r: &CallerRecord) -> Result<Params, StoreError> {
    let d = &r.deadlines;
    Ok(vec![
        text(r.id.to_string()),
        Value::Integer(version_param(r.version)?),
        text(r.state.as_str()),
        Value::Integer(i64::from(r.attempt)),
        opt_int(opt_to_micros(r.next_attempt_at)?),
        opt_text(r.last_failure.as_deref().map(failure_json).transpose()?),
        opt_text(r.target.as_deref()),
        opt_text(r.token.as_deref()),
        text(links_json(&r.start_links)?),
        r.result
            .as_ref()
            .map_or(Value::Null, |c| blob(c.data.to_vec())),
        opt_text(
            r.result
                .as_ref()
                .map(|c| headers_json(&c.headers))
                .transpose()?,
        ),
        opt_text(r.error.as_deref().map(failure_json).transpose()?),
        text(links_json(&r.completion_links)?),
        opt_int(opt_to_micros(r.cancel_requested_at)?),
        opt_int(opt_to_micros(r.started_at)?),
        opt_int(opt_to_micros(r.closed_at)?),
        opt_int(opt_to_micros(d.schedule_to_close)?),
        opt_int(opt_to_micros(d.schedule_to_start)?),
        opt_int(opt_to_micros(d.start_to_close)?),
        Value::Integer(i64::from(r.state.is_terminal())),
    ])
}

impl CallerStore for SqliteStore {
    fn insert<'a>(&'a self, record: &'a CallerRecord) -> StoreFuture<'a, InsertOutcome> {
        Box::pin(async move {
            let params = insert_params(record)?;
            let id = record.id;
            let request_id = record.request_id.clone();
            let key = key_params(&record.request_key());
            self.write(move |conn| {
                let inserted = execute(conn, INSERT, &params).map_err(|e| match e {
                    StoreError::Duplicate(m) => StoreError::Duplicate(format!(
                        "an operation with id `{id}` exists already ({m})"
                    )),
                    e => e,
                })?;
                if inserted == 1 {
                    return Ok(InsertOutcome::Inserted);
                }
                query_opt(conn, BY_KEY, &key, |row| caller_from_row(row))?
                    .map(|e| InsertOutcome::Exists(Box::new(e)))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "request id `{request_id}` conflicted, but its operation is gone"
                        ))
                    })
            })
            .await
        })
    }

    fn get(&self, id: OperationId) -> StoreFuture<'_, Option<CallerRecord>> {
        Box::pin(async move {
            let id = id.to_string();
            self.read(move |conn| by_id(conn, &id)).await
        })
    }

    fn find_by_request_id<'a>(
        &'a self,
        key: &'a RequestKey,
    ) -> StoreFuture<'a, Option<CallerRecord>> {
        Box::pin(async move {
            let key = key_params(key);
            self.read(move |conn| query_opt(conn, BY_KEY, &key, |row| caller_from_row(row)))
                .await
        })
    }

    fn list_unfinished(&self) -> StoreFuture<'_, Vec<CallerRecord>> {
        Box::pin(async move {
            sorted_records(
                self.read(|conn| query_all(conn, UNFINISHED, &[], |row| caller_from_row(row)))
                    .await,
            )
        })
    }

    fn update<'a>(&'a self, record: &'a mut CallerRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let params = update_params(record)?;
            let times = crate::store::memory::CallerTimes::of(record)?;
            let updated = self
                .write(move |conn| {
                    if execute(conn, UPDATE, &params)? == 0 {
                        return Ok(None);
                    }
                    query_opt(conn, UPDATED, &params[..1], |row| {
                        Ok((
                            row.int("version")?,
                            row.opt_text("lease_owner")?,
                            row.opt_int("lease_expires_at_us")?,
                        ))
                    })
                })
                .await?;
            let Some((version, owner, expires)) = updated else {
                return Ok(false);
            };
            times.write(record);
            record.version = crate::store::sql::counter(version, "version")?;
            record.lease = match (owner, expires) {
                (Some(owner), Some(expires)) => Some(Lease {
                    owner,
                    expires_at: from_micros(expires)?,
                }),
                _ => None,
            };
            Ok(true)
        })
    }

    fn request_cancel(
        &self,
        id: OperationId,
        at: SystemTime,
    ) -> StoreFuture<'_, CancelRequestOutcome> {
        Box::pin(async move {
            let params = vec![text(id.to_string()), Value::Integer(to_micros(at)?)];
            self.write(move |conn| {
                if execute(conn, REQUEST_CANCEL, &params)? == 1 {
                    return Ok(CancelRequestOutcome::Requested);
                }
                Ok(match by_id(conn, &id.to_string())? {
                    None => CancelRequestOutcome::UnknownOperation,
                    Some(r) if r.state.is_terminal() => CancelRequestOutcome::AlreadyFinished,
                    Some(_) => CancelRequestOutcome::AlreadyRequested,
                })
            })
            .await
        })
    }

    fn record_completion<'a>(
        &'a self,
        id: OperationId,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompletionOutcome> {
        Box::pin(async move {
            let token = Some(completion.token.as_str()).filter(|t| !t.is_empty());
            let result = completion.outcome.as_ref().ok();
            let error = completion.outcome.as_ref().err().map(|e| e.to_failure());
            let params = vec![
                text(id.to_string()),
                text(completion.final_state().as_str()),
                opt_text(token),
                result.map_or(Value::Null, |c| blob(c.data.to_vec())),
                opt_text(result.map(|c| headers_json(&c.headers)).transpose()?),
                opt_text(error.as_ref().map(failure_json).transpose()?),
                text(links_json(&completion.links)?),
                Value::Integer(to_micros(now)?),
            ];
            self.write(move |conn| {
                if execute(conn, COMPLETE, &params)? == 1
                    && let Some((version, token)) =
                        query_opt(conn, COMPLETED, &params[..1], |row| {
                            Ok((row.int("version")?, row.opt_text("token")?))
                        })?
                {
                    return Ok(CompletionOutcome::Applied(AppliedCompletion {
                        version: crate::store::sql::counter(version, "version")?,
                        token,
                    }));
                }
                Ok(match by_id(conn, &id.to_string())? {
                    None => CompletionOutcome::UnknownOperation,
                    Some(r) if r.state.is_terminal() => CompletionOutcome::AlreadyFinished(r.state),
                    Some(r) => CompletionOutcome::TokenMismatch {
                        expected: r.token.unwrap_or_default(),
                    },
                })
            })
            .await
        })
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        max: usize,
    ) -> StoreFuture<'a, Vec<CallerRecord>> {
        Box::pin(async move {
            let params = vec![
                text(owner),
                Value::Integer(expiry_micros(now, lease)?),
                Value::Integer(to_micros(now)?),
                Value::Integer(limit(max)),
            ];
            let claimed = self
                .write(move |conn| query_all(conn, CLAIM, &params, |row| caller_from_row(row)))
                .await;
            sorted_records(claimed)
        })
    }

    fn renew<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<OperationId>> {
        Box::pin(async move {
            // One row written, whatever the number of operations: the leases are listed on a
            // read connection, after the heartbeat is committed.
            self.heartbeat(HEARTBEAT, owner, now, lease).await?;
            let params = vec![text(owner)];
            let mut ids = self
                .read(move |conn| {
                    query_all(conn, LEASED, &params, |row| parse_uuid(&row.text("id")?))
                })
                .await?;
            ids.sort();
            Ok(ids)
        })
    }

    fn release<'a>(&'a self, owner: &'a str, ids: &'a [OperationId]) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let owner = owner.to_owned();
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            self.write(move |conn| {
                let mut released = 0;
                for id in ids {
                    released += execute(
                        conn,
                        "UPDATE caller_operations SET lease_owner = NULL, \
                         lease_expires_at_us = NULL WHERE id = ?1 AND lease_owner = ?2",
                        &[text(id), text(owner.as_str())],
                    )?;
                }
                Ok(released)
            })
            .await
        })
    }

    fn release_all<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let params = vec![text(owner)];
            self.write(move |conn| {
                execute(
                    conn,
                    "UPDATE caller_operations SET lease_owner = NULL, \
                     lease_expires_at_us = NULL WHERE lease_owner = ?1",
                    &params,
                )
            })
            .await
        })
    }

    fn purge_finished(&self, closed_before: SystemTime) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let params = vec![Value::Integer(to_micros(closed_before)?)];
            self.write(move |conn| execute(conn, PURGE_FINISHED, &params))
                .await
        })
    }

    fn list_recent_operations(&self, max: usize) -> StoreFuture<'_, Vec<CallerRecord>> {
        Box::pin(async move {
            let params = vec![Value::Integer(limit(crate::store::listing::page_size(max)))];
            let mut records = self
                .read(move |conn| {
                    query_all(
                        conn,
                        concat!(
                            "SELECT * FROM caller_operations_leased \
                             ORDER BY scheduled_at_us DESC, id DESC",
                            limit_param!("?1")
                        ),
                        &params,
                        |row| caller_from_row(row),
                    )
                })
                .await?;
            records.sort_by_key(|r| std::cmp::Reverse((r.scheduled_at, r.id)));
            Ok(records)
        })
    }

    fn list_operations<'a>(&'a self, query: &'a CallerQuery) -> StoreFuture<'a, Vec<CallerRecord>> {
        Box::pin(async move {
            let (sql, params) = super::listing::caller(query)?;
            sorted_records(
                self.read(move |conn| query_all(conn, &sql, &params, |row| caller_from_row(row)))
                    .await,
            )
        })
    }
}
