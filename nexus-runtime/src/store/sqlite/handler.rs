//! [`HandlerStore`] on SQLite. Where a write has two statements, the one that can fail runs first
//! (a failing statement changes nothing), so no write needs a savepoint of its own.

use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use rusqlite::types::Value;

use super::SqliteStore;
use super::rows::{
    Params, blob, execute, limit_param, opt_int, opt_text, query_all, query_opt, text,
};
use crate::completion::Completion;
use crate::store::handler::check_answer;
use crate::store::sql::{
    RowExt as _, async_from_row, failure_json, headers_json, limit, links_json, sorted_async,
    start_answer_from_row,
};
use crate::store::time::{expiry_micros, from_micros, opt_to_micros, to_micros};
use crate::store::{
    AsyncOperationRecord, AsyncQuery, AsyncState, BeginStart, CancelRequestOutcome, CompleteAsync,
    HandlerPurge, HandlerStore, RetargetAsync, StartAnswer, StartClaim, StartKey, StoreError,
    StoreFuture, StoredCallback,
};

const BY_TOKEN: &str = "SELECT * FROM handler_operations_leased WHERE token = ?1";

fn by_token(conn: &Connection, token: &str) -> Result<Option<AsyncOperationRecord>, StoreError> {
    query_opt(conn, BY_TOKEN, &[text(token)], |row| async_from_row(row))
}

/// `?1`–`?4`: the start's key.
fn key_params(key: &StartKey) -> Params {
    vec![
        text(key.service.as_str()),
        text(key.operation.as_str()),
        text(key.request_id.as_str()),
        text(key.principal.as_str()),
    ]
}

fn operation_params(op: &AsyncOperationRecord) -> Result<Params, StoreError> {
    let callback = op.callback.as_ref();
    Ok(vec![
        text(op.token.as_str()),
        text(op.service.as_str()),
        text(op.operation.as_str()),
        text(op.request_id.as_str()),
        blob(op.input.data.to_vec()),
        text(headers_json(&op.input.headers)?),
        text(headers_json(&op.headers)?),
        text(links_json(&op.links)?),
        opt_text(callback.map(|c| c.url.as_str())),
        opt_text(callback.map(|c| headers_json(&c.headers)).transpose()?),
        text(op.state.as_str()),
        Value::Integer(i64::from(op.resumable)),
        opt_int(opt_to_micros(op.cancel_requested_at)?),
        opt_int(opt_to_micros(op.deadline)?),
        Value::Integer(to_micros(op.started_at)?),
        opt_int(opt_to_micros(op.closed_at)?),
        opt_text(op.lease.as_ref().map(|l| l.owner.as_str())),
        opt_int(opt_to_micros(op.lease.as_ref().map(|l| l.expires_at))?),
        text(op.principal.name()),
        text(op.principal.kind().as_str()),
    ])
}

/// The running operations an owner (`?1`) holds a lease on, expired or not.
const LEASED: &str = "SELECT token FROM handler_operations WHERE lease_owner = ?1 \
     AND state = 'running' ORDER BY token";

/// An owner's heartbeat (`?1`, until `?2`): what keeps every lease it holds live.
const HEARTBEAT: &str = crate::store::sql::heartbeat_sql!("handler_owners", "?1", "?2");

/// How many running operations an owner (`?1`) holds a lease on.
const LEASES: &str = "SELECT COUNT(*) AS leases FROM handler_operations WHERE lease_owner = ?1 \
     AND state = 'running'";

/// Those of them whose cancellation was requested.
const CANCEL_REQUESTED: &str = "SELECT token FROM handler_operations WHERE lease_owner = ?1 \
     AND state = 'running' AND cancel_requested_at_us IS NOT NULL ORDER BY token";

/// Leases the oldest running operations nobody holds (or whose lease expired: its own expiry
/// and its owner's heartbeat both past).
pub(super) const CLAIM: &str = concat!(
    "UPDATE handler_operations SET lease_owner = ?1, lease_expires_at_us = ?2 \
     WHERE token IN (SELECT token FROM handler_operations_leased WHERE state = 'running' \
     AND (lease_owner IS NULL OR lease_expires_at_us <= ?3) ORDER BY started_at_us, token",
    limit_param!("?4"),
    ") RETURNING *"
);

impl SqliteStore {
    /// The tokens `sql` selects for `owner` (`LEASED`, `CANCEL_REQUESTED`).
    async fn owner_tokens(
        &self,
        owner: &str,
        sql: &'static str,
    ) -> Result<Vec<String>, StoreError> {
        let params = vec![text(owner)];
        self.read(move |conn| query_all(conn, sql, &params, |row| row.text("token")))
            .await
    }
}

impl HandlerStore for SqliteStore {
    fn begin_start<'a>(
        &'a self,
        key: &'a StartKey,
        now: SystemTime,
        claim_until: SystemTime,
    ) -> StoreFuture<'a, BeginStart> {
        Box::pin(async move {
            let claim = StartClaim {
                id: uuid::Uuid::new_v4(),
                expires_at: from_micros(to_micros(claim_until)?)?,
            };
            let claim_id = claim.id.to_string();
            let mut params = key_params(key);
            params.extend([
                text(claim_id.as_str()),
                Value::Integer(to_micros(claim.expires_at)?),
                Value::Integer(to_micros(now)?),
            ]);
            let request_id = key.request_id.clone();
            // A claim is answered only once its batch is on disk: the operation's method runs
            // after it, so a process killed meanwhile leaves the claim for the next one to find
            // (and resume or refuse), never a run with no trace. A claim found in flight is
            // answered at once: that refusal is retryable, whatever becomes of the other claim.
            let early: fn(&BeginStart) -> bool =
                |begun| matches!(begun, BeginStart::InFlight { .. });
            self.write_early(
                move |conn| {
                    // Won when the row was inserted, or taken over (an expired claim): one row
                    // changed. (No `RETURNING`: SQLite gathers its rows in a temporary table, made
                    // and dropped for every claim.)
                    let changed = execute(
                        conn,
                        "INSERT INTO handler_starts (service, operation, request_id, principal, \
                     claim_id, claim_expires_at_us, created_at_us) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (principal, service, operation, request_id) DO UPDATE \
                     SET claim_id = excluded.claim_id, \
                     claim_expires_at_us = excluded.claim_expires_at_us \
                     WHERE handler_starts.answer IS NULL \
                     AND (handler_starts.claim_expires_at_us IS NULL \
                     OR handler_starts.claim_expires_at_us <= ?7)",
                        &params,
                    )?;
                    if changed == 1 {
                        return Ok(BeginStart::Claimed(claim));
                    }
                    let found = query_opt(
                        conn,
                        "SELECT * FROM handler_starts WHERE service = ?1 AND operation = ?2 \
                     AND request_id = ?3 AND principal = ?4",
                        &params[..4],
                        |row| {
                            Ok((
                                start_answer_from_row(row)?,
                                row.opt_int("claim_expires_at_us")?,
                            ))
                        },
                    )?;
                    let (answer, expires) = found.ok_or_else(|| StoreError::Unavailable {
                        message: format!(
                            "the start record of request `{request_id}` vanished while claiming \
                         it; try again"
                        ),
                        source: None,
                    })?;
                    if let Some(answer) = answer {
                        return Ok(BeginStart::Answered(answer));
                    }
                    Ok(BeginStart::InFlight {
                        claim_expires_at: from_micros(expires.unwrap_or_default())?,
                    })
                },
                early,
            )
            .await
        })
    }

    fn finish_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
        answer: &'a StartAnswer,
        operation: Option<&'a AsyncOperationRecord>,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            check_answer(answer, operation)?;
            let (kind, output, token, failure, links) = match answer {
                StartAnswer::Sync { output, links } => {
                    ("sync", Some(output), None, None, Some(links))
                }
                StartAnswer::Async { token, links } => {
                    ("async", None, Some(token.as_str()), None, Some(links))
                }
                StartAnswer::Failed(f) => ("failed", None, None, Some(f), None),
            };
            let mut params = key_params(key);
            params.extend([
                text(claim.id.to_string()),
                text(kind),
                output.map_or(Value::Null, |c| blob(c.data.to_vec())),
                opt_text(output.map(|c| headers_json(&c.headers)).transpose()?),
                opt_text(token),
                opt_text(failure.map(failure_json).transpose()?),
                opt_text(links.map(|l| links_json(l)).transpose()?),
                Value::Integer(to_micros(now)?),
            ]);
            let operation = operation
                .map(|op| Ok::<_, StoreError>((op.token.clone(), operation_params(op)?)))
                .transpose()?;
            self.write(move |conn| {
                // The async operation's record first: its insert is what can fail (a token
                // taken), and a failing statement changes nothing.
                if let Some((token, op)) = &operation {
                    match execute(
                        conn,
                        "INSERT INTO handler_operations (token, service, operation, \
                         request_id, input_data, input_headers, headers, links, callback_url, \
                         callback_headers, state, resumable, cancel_requested_at_us, \
                         deadline_us, started_at_us, closed_at_us, lease_owner, \
                         lease_expires_at_us, principal, principal_kind) VALUES (?1, ?2, ?3, \
                         ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
                         ?19, ?20)",
                        op,
                    ) {
                        Ok(_) => {}
                        // A token taken: by this very answer, recorded before, when the claim
                        // is gone (then nothing applies), or by another operation.
                        Err(StoreError::Duplicate(m)) => {
                            let claimed = query_opt(
                                conn,
                                "SELECT 1 FROM handler_starts WHERE service = ?1 \
                                 AND operation = ?2 AND request_id = ?3 AND principal = ?4 \
                                 AND claim_id = ?5 AND answer IS NULL",
                                &params[..5],
                                |_| Ok(()),
                            )?;
                            if claimed.is_none() {
                                return Ok(false);
                            }
                            return Err(StoreError::Duplicate(format!(
                                "an async operation with token `{token}` exists already ({m})"
                            )));
                        }
                        Err(e) => return Err(e),
                    }
                }
                let updated = execute(
                    conn,
                    "UPDATE handler_starts SET answer = ?6, output_data = ?7, \
                     output_headers = ?8, token = ?9, failure = ?10, links = ?11, \
                     answered_at_us = ?12, claim_id = NULL, claim_expires_at_us = NULL \
                     WHERE service = ?1 AND operation = ?2 AND request_id = ?3 \
                     AND principal = ?4 AND claim_id = ?5 AND answer IS NULL",
                    &params,
                )?;
                if updated == 1 {
                    return Ok(true);
                }
                // The claim was lost: the record inserted above goes too.
                if let Some((token, _)) = &operation {
                    execute(
                        conn,
                        "DELETE FROM handler_operations WHERE token = ?1",
                        &[text(token.as_str())],
                    )?;
                }
                Ok(false)
            })
            .await
        })
    }

    fn abandon_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut params = key_params(key);
            params.push(text(claim.id.to_string()));
            self.write(move |conn| {
                execute(
                    conn,
                    "DELETE FROM handler_starts WHERE service = ?1 AND operation = ?2 \
                     AND request_id = ?3 AND principal = ?4 AND claim_id = ?5 \
                     AND answer IS NULL",
                    &params,
                )
                .map(|n| n == 1)
            })
            .await
        })
    }

    fn get_async<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<AsyncOperationRecord>> {
        Box::pin(async move {
            let token = token.to_owned();
            self.read(move |conn| by_token(conn, &token)).await
        })
    }

    fn request_cancel_async<'a>(
        &'a self,
        token: &'a str,
        at: SystemTime,
    ) -> StoreFuture<'a, CancelRequestOutcome> {
        Box::pin(async move {
            let params = vec![text(token), Value::Integer(to_micros(at)?)];
            self.write(move |conn| {
                let updated = execute(
                    conn,
                    "UPDATE handler_operations SET cancel_requested_at_us = ?2 \
                     WHERE token = ?1 AND state = 'running' AND cancel_requested_at_us IS NULL",
                    &params,
                )?;
                if updated == 1 {
                    return Ok(CancelRequestOutcome::Requested);
                }
                let token = match &params[0] {
                    Value::Text(token) => token.as_str(),
                    _ => "",
                };
                Ok(match by_token(conn, token)? {
                    None => CancelRequestOutcome::UnknownOperation,
                    Some(op) if op.state.is_terminal() => CancelRequestOutcome::AlreadyFinished,
                    Some(_) => CancelRequestOutcome::AlreadyRequested,
                })
            })
            .await
        })
    }

    fn complete_async<'a>(
        &'a self,
        completion: &'a Completion,
        now: SystemTime,
    ) -> StoreFuture<'a, CompleteAsync> {
        Box::pin(async move {
            let state = AsyncState::of_completion(completion);
            let now_us = to_micros(now)?;
            let token = completion.token.clone();
            let close = vec![
                text(token.as_str()),
                text(state.as_str()),
                Value::Integer(now_us),
            ];
            let result = completion.outcome.as_ref().ok();
            let failure = completion.outcome.as_ref().err().map(|e| e.to_failure());
            let id = crate::id::new_v7();
            // ?3 (url) and ?4 (headers) come from the operation's record.
            let mut delivery = vec![
                text(id.to_string()),
                text(token.as_str()),
                Value::Null,
                Value::Null,
                text(state.as_str()),
                result.map_or(Value::Null, |c| blob(c.data.to_vec())),
                opt_text(result.map(|c| headers_json(&c.headers)).transpose()?),
                opt_text(failure.as_ref().map(failure_json).transpose()?),
                text(links_json(&completion.links)?),
                opt_int(opt_to_micros(completion.start_time)?),
                opt_int(opt_to_micros(completion.close_time)?),
                Value::Integer(now_us),
            ];
            self.write(move |conn| {
                // The callback is read after the update, in the same transaction (no
                // `RETURNING`, which SQLite gathers in a temporary table).
                let closed = execute(
                    conn,
                    "UPDATE handler_operations SET state = ?2, closed_at_us = ?3, \
                     lease_owner = NULL, lease_expires_at_us = NULL \
                     WHERE token = ?1 AND state = 'running'",
                    &close,
                )? == 1;
                let callback = if closed {
                    query_opt(
                        conn,
                        "SELECT callback_url, callback_headers FROM handler_operations \
                         WHERE token = ?1",
                        &close[..1],
                        |row| {
                            Ok((
                                row.opt_text("callback_url")?,
                                row.opt_text("callback_headers")?,
                            ))
                        },
                    )?
                } else {
                    None
                };
                let Some((url, headers)) = callback else {
                    return Ok(match by_token(conn, &token)? {
                        None => CompleteAsync::UnknownOperation,
                        Some(op) => CompleteAsync::AlreadyFinished(op.state),
                    });
                };
                let Some(url) = url else {
                    return Ok(CompleteAsync::Applied { delivery: None });
                };
                delivery[2] = Value::Text(url);
                delivery[3] = Value::Text(headers.unwrap_or_else(|| "{}".to_owned()));
                execute(
                    conn,
                    "INSERT INTO completion_deliveries (id, token, url, headers, outcome, \
                     result_data, result_headers, failure, links, start_time_us, \
                     close_time_us, state, attempts, next_attempt_at_us, last_error, \
                     created_at_us, finished_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
                     ?9, ?10, ?11, 'pending', 0, ?12, NULL, ?12, NULL)",
                    &delivery,
                )?;
                Ok(CompleteAsync::Applied { delivery: Some(id) })
            })
            .await
        })
    }

    fn retarget_async<'a>(
        &'a self,
        token: &'a str,
        callback: &'a StoredCallback,
        now: SystemTime,
    ) -> StoreFuture<'a, RetargetAsync> {
        Box::pin(async move {
            let params = vec![
                text(token),
                text(callback.url.as_str()),
                text(headers_json(&callback.headers)?),
                Value::Integer(to_micros(now)?),
            ];
            self.write(move |conn| super::outbox::retarget(conn, &params))
                .await
        })
    }

    fn list_unfinished_async(&self) -> StoreFuture<'_, Vec<AsyncOperationRecord>> {
        Box::pin(async move {
            sorted_async(
                self.read(|conn| {
                    query_all(
                        conn,
                        "SELECT * FROM handler_operations_leased WHERE state = 'running' \
                         ORDER BY started_at_us, token",
                        &[],
                        |row| async_from_row(row),
                    )
                })
                .await,
            )
        })
    }

    fn claim_async<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
        max: usize,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        Box::pin(async move {
            let params = vec![
                text(owner),
                Value::Integer(expiry_micros(now, lease)?),
                Value::Integer(to_micros(now)?),
                Value::Integer(limit(max)),
            ];
            sorted_async(
                self.write(move |conn| query_all(conn, CLAIM, &params, |row| async_from_row(row)))
                    .await,
            )
        })
    }

    fn renew_async<'a>(
        &'a self,
        owner: &'a str,
        now: SystemTime,
        lease: Duration,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            // One row written, whatever the number of operations: the leases are counted on a
            // read connection, after the heartbeat is committed.
            self.heartbeat(HEARTBEAT, owner, now, lease).await?;
            let params = vec![text(owner)];
            let leases = self
                .read(move |conn| query_opt(conn, LEASES, &params, |row| row.int("leases")))
                .await?
                .unwrap_or(0);
            crate::store::sql::counter(leases, "leases")
        })
    }

    fn leased_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(self.owner_tokens(owner, LEASED))
    }

    fn cancel_requested_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(self.owner_tokens(owner, CANCEL_REQUESTED))
    }

    fn release_async<'a>(&'a self, owner: &'a str, tokens: &'a [String]) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let owner = owner.to_owned();
            let tokens = tokens.to_vec();
            self.write(move |conn| {
                let mut released = 0;
                for token in tokens {
                    released += execute(
                        conn,
                        "UPDATE handler_operations SET lease_owner = NULL, \
                         lease_expires_at_us = NULL WHERE token = ?1 AND lease_owner = ?2",
                        &[text(token), text(owner.as_str())],
                    )?;
                }
                Ok(released)
            })
            .await
        })
    }

    fn purge_handled(&self, before: SystemTime) -> StoreFuture<'_, HandlerPurge> {
        Box::pin(async move {
            let params = vec![Value::Integer(to_micros(before)?)];
            self.write(move |conn| {
                let starts = execute(
                    conn,
                    "DELETE FROM handler_starts WHERE (answer IS NOT NULL \
                     AND answered_at_us < ?1) OR (answer IS NULL \
                     AND (claim_expires_at_us IS NULL OR claim_expires_at_us < ?1))",
                    &params,
                )?;
                let operations = execute(
                    conn,
                    "DELETE FROM handler_operations WHERE state <> 'running' \
                     AND closed_at_us < ?1",
                    &params,
                )?;
                Ok(HandlerPurge { starts, operations })
            })
            .await
        })
    }

    fn list_async<'a>(
        &'a self,
        query: &'a AsyncQuery,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        Box::pin(async move {
            let (sql, params) = super::listing::operations(query)?;
            sorted_async(
                self.read(move |conn| query_all(conn, &sql, &params, |row| async_from_row(row)))
                    .await,
            )
        })
    }
}
