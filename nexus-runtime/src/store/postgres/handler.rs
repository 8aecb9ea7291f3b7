//! [`HandlerStore`] on PostgreSQL. `retarget_async` runs in one transaction: first the
//! operation's record (which serializes with `complete_async` on the row): running, that is all;
//! finished, its pending delivery is redirected too (conditional on `state = 'pending'`, so it
//! serializes with the sender's bookkeeping, whose `mark_retry` and `mark_dead` then no longer
//! match the redirected row), or, with none waiting, the transaction is rolled back.

use super::PostgresStore;
use super::listing::{push_after, push_states};
use crate::store::sql::*;
use crate::store::{
    AsyncOperationRecord, AsyncQuery, BeginStart, CancelRequestOutcome, CompleteAsync,
    HandlerPurge, HandlerStore, RetargetAsync, StartAnswer, StartClaim, StartKey, StoreError,
    StoreFuture, StoredCallback,
};

/// The async operation with token `token`, read through `exec` (the pool, or a write's
/// connection when it may have changed in the write's transaction).
async fn async_by_token<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    token: &str,
) -> Result<Option<AsyncOperationRecord>, StoreError> {
    sqlx::query("SELECT * FROM handler_operations_leased WHERE token = $1")
        .bind(token)
        .fetch_optional(exec)
        .await
        .map_err(db_error)?
        .map(|row| async_from_row(&row))
        .transpose()
}

/// Whether the lease of a `handler_operations` row `h` is free at `$3`: nobody holds it, or both
/// its own expiry and its owner's heartbeat are past.
macro_rules! lease_free {
    () => {
        "(h.lease_owner IS NULL OR (h.lease_expires_at_us <= $3 AND NOT EXISTS \
         (SELECT 1 FROM handler_owners o WHERE o.owner = h.lease_owner \
         AND o.expires_at_us > $3)))"
    };
}

/// Leases the oldest running operations nobody holds (or whose lease expired): see
/// [`PostgresStore::claim_rows`].
const CLAIM: &str = concat!(
    "WITH picked AS MATERIALIZED (SELECT h.token FROM handler_operations h \
     WHERE h.state = 'running' AND ",
    lease_free!(),
    " ORDER BY h.started_at_us, h.token LIMIT $4 ",
    "FOR UPDATE OF h SKIP LOCKED",
    ") UPDATE handler_operations h SET lease_owner = $1, lease_expires_at_us = $2 \
     WHERE h.token IN (SELECT token FROM picked) AND h.state = 'running' AND ",
    lease_free!(),
    " RETURNING h.*"
);

/// An owner's heartbeat (`$1`, until `$2`): what keeps every lease it holds live.
const HEARTBEAT: &str = crate::store::sql::heartbeat_sql!("handler_owners", "$1", "$2");

/// How many running operations an owner (`$1`) holds a lease on.
const LEASES: &str = "SELECT COUNT(*) FROM handler_operations WHERE lease_owner = $1 \
     AND state = 'running'";

/// The running operations an owner (`$1`) holds a lease on, expired or not.
const LEASED: &str = "SELECT token FROM handler_operations WHERE lease_owner = $1 \
     AND state = 'running' ORDER BY token";

/// Those of them whose cancellation was requested.
const CANCEL_REQUESTED: &str = "SELECT token FROM handler_operations WHERE lease_owner = $1 \
     AND state = 'running' AND cancel_requested_at_us IS NOT NULL ORDER BY token";

impl PostgresStore {
    /// The tokens `sql` selects for `owner` (`LEASED`, `CANCEL_REQUESTED`).
    async fn owner_tokens(
        &self,
        owner: &str,
        sql: &'static str,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query(sql)
            .bind(owner)
            .fetch_all(self.readers())
            .await
            .map_err(db_error)?
            .iter()
            .map(|row| row.text("token"))
            .collect()
    }
}

impl HandlerStore for PostgresStore {
    fn list_async<'a>(
        &'a self,
        query: &'a AsyncQuery,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        Box::pin(async move {
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "SELECT * FROM handler_operations_leased WHERE 1 = 1",
            );
            push_states(&mut qb, "state", query.states.iter().map(|s| s.as_str()));
            if let Some(service) = &query.service {
                qb.push(" AND service = ");
                qb.push_bind(service.clone());
            }
            push_after(&mut qb, "started_at_us", "token", query.after.as_ref())?;
            qb.push(" ORDER BY started_at_us, token LIMIT ");
            qb.push_bind(limit(crate::store::listing::page_size(query.limit)));
            let rows = qb
                .build()
                .fetch_all(self.readers())
                .await
                .map_err(db_error)?;
            sorted_async(rows.iter().map(async_from_row).collect())
        })
    }

    fn begin_start<'a>(
        &'a self,
        key: &'a StartKey,
        now: std::time::SystemTime,
        claim_until: std::time::SystemTime,
    ) -> StoreFuture<'a, BeginStart> {
        Box::pin(async move {
            use crate::store::time::{from_micros, to_micros};
            let claim = StartClaim {
                id: uuid::Uuid::new_v4(),
                expires_at: from_micros(to_micros(claim_until)?)?,
            };
            let mut w = self.write_one().await?;
            let won = sqlx::query(
                "INSERT INTO handler_starts (service, operation, request_id, claim_id, \
                 claim_expires_at_us, created_at_us, principal) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (principal, service, operation, request_id) DO UPDATE \
                 SET claim_id = excluded.claim_id, \
                 claim_expires_at_us = excluded.claim_expires_at_us \
                 WHERE handler_starts.answer IS NULL \
                 AND (handler_starts.claim_expires_at_us IS NULL \
                 OR handler_starts.claim_expires_at_us <= $6) \
                 RETURNING claim_id",
            )
            .bind(&key.service)
            .bind(&key.operation)
            .bind(&key.request_id)
            .bind(claim.id.to_string())
            .bind(to_micros(claim.expires_at)?)
            .bind(to_micros(now)?)
            .bind(&key.principal)
            .fetch_optional(&mut *w)
            .await
            .map_err(db_error)?;
            if let Some(row) = won
                && row.text("claim_id")? == claim.id.to_string()
            {
                w.commit().await.map_err(db_error)?;
                return Ok(BeginStart::Claimed(claim));
            }
            // Read in the write's turn: the record that won may be in its batch.
            let row = sqlx::query(
                "SELECT * FROM handler_starts WHERE service = $1 AND operation = $2 \
                 AND request_id = $3 AND principal = $4",
            )
            .bind(&key.service)
            .bind(&key.operation)
            .bind(&key.request_id)
            .bind(&key.principal)
            .fetch_optional(&mut *w)
            .await
            .map_err(db_error)?;
            w.commit().await.map_err(db_error)?;
            let row = row.ok_or_else(|| StoreError::Unavailable {
                message: format!(
                    "the start record of request `{}` vanished while claiming it; \
                     try again",
                    key.request_id
                ),
                source: None,
            })?;
            if let Some(answer) = start_answer_from_row(&row)? {
                return Ok(BeginStart::Answered(answer));
            }
            let expires = row.opt_int("claim_expires_at_us")?.unwrap_or_default();
            Ok(BeginStart::InFlight {
                claim_expires_at: from_micros(expires)?,
            })
        })
    }

    fn finish_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
        answer: &'a StartAnswer,
        operation: Option<&'a AsyncOperationRecord>,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            use crate::store::time::{opt_to_micros, to_micros};
            crate::store::handler::check_answer(answer, operation)?;
            let (kind, output, token, failure, links) = match answer {
                StartAnswer::Sync { output, links } => {
                    ("sync", Some(output), None, None, Some(links))
                }
                StartAnswer::Async { token, links } => {
                    ("async", None, Some(token.as_str()), None, Some(links))
                }
                StartAnswer::Failed(f) => ("failed", None, None, Some(f), None),
            };
            // One statement for a sync answer or a failure: atomic on its own, so
            // without a savepoint; two with the async operation's record.
            let mut tx = if operation.is_some() {
                self.write_tx().await?
            } else {
                self.write_one().await?
            };
            let updated = sqlx::query(
                "UPDATE handler_starts SET answer = $5, output_data = $6, \
                 output_headers = $7, token = $8, failure = $9, links = $10, \
                 answered_at_us = $11, claim_id = NULL, claim_expires_at_us = NULL \
                 WHERE service = $1 AND operation = $2 AND request_id = $3 \
                 AND claim_id = $4 AND answer IS NULL AND principal = $12",
            )
            .bind(&key.service)
            .bind(&key.operation)
            .bind(&key.request_id)
            .bind(claim.id.to_string())
            .bind(kind)
            .bind(output.map(|c| c.data.to_vec()))
            .bind(output.map(|c| headers_json(&c.headers)).transpose()?)
            .bind(token)
            .bind(failure.map(failure_json).transpose()?)
            .bind(links.map(|l| links_json(l)).transpose()?)
            .bind(to_micros(now)?)
            .bind(&key.principal)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if updated.rows_affected() != 1 {
                tx.commit().await.map_err(db_error)?;
                return Ok(false);
            }
            if let Some(op) = operation {
                let callback = op.callback.as_ref();
                sqlx::query(
                    "INSERT INTO handler_operations (token, service, operation, \
                     request_id, input_data, input_headers, headers, links, \
                     callback_url, callback_headers, state, resumable, \
                     cancel_requested_at_us, deadline_us, started_at_us, closed_at_us, \
                     lease_owner, lease_expires_at_us, principal, principal_kind) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17, $18, $19, $20)",
                )
                .bind(&op.token)
                .bind(&op.service)
                .bind(&op.operation)
                .bind(&op.request_id)
                .bind(op.input.data.to_vec())
                .bind(headers_json(&op.input.headers)?)
                .bind(headers_json(&op.headers)?)
                .bind(links_json(&op.links)?)
                .bind(callback.map(|c| c.url.as_str()))
                .bind(callback.map(|c| headers_json(&c.headers)).transpose()?)
                .bind(op.state.as_str())
                .bind(op.resumable)
                .bind(opt_to_micros(op.cancel_requested_at)?)
                .bind(opt_to_micros(op.deadline)?)
                .bind(to_micros(op.started_at)?)
                .bind(opt_to_micros(op.closed_at)?)
                .bind(op.lease.as_ref().map(|l| l.owner.as_str()))
                .bind(opt_to_micros(op.lease.as_ref().map(|l| l.expires_at))?)
                .bind(op.principal.name())
                .bind(op.principal.kind().as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| match db_error(e) {
                    StoreError::Duplicate(m) => StoreError::Duplicate(format!(
                        "an async operation with token `{}` exists already ({m})",
                        op.token
                    )),
                    e => e,
                })?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
    }

    fn abandon_start<'a>(
        &'a self,
        key: &'a StartKey,
        claim: &'a StartClaim,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.execute_one(
                sqlx::query(
                    "DELETE FROM handler_starts WHERE service = $1 AND operation = $2 \
                     AND request_id = $3 AND claim_id = $4 AND answer IS NULL \
                     AND principal = $5",
                )
                .bind(&key.service)
                .bind(&key.operation)
                .bind(&key.request_id)
                .bind(claim.id.to_string())
                .bind(&key.principal),
            )
            .await
        })
    }

    fn get_async<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<AsyncOperationRecord>> {
        Box::pin(async move { async_by_token(self.readers(), token).await })
    }

    fn request_cancel_async<'a>(
        &'a self,
        token: &'a str,
        at: std::time::SystemTime,
    ) -> StoreFuture<'a, CancelRequestOutcome> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            use CancelRequestOutcome as Outcome;
            let updated = sqlx::query(
                "UPDATE handler_operations SET cancel_requested_at_us = $2 \
                 WHERE token = $1 AND state = 'running' \
                 AND cancel_requested_at_us IS NULL",
            )
            .bind(token)
            .bind(to_micros(at)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            if updated.rows_affected() == 1 {
                return Ok(Outcome::Requested);
            }
            Ok(match self.get_async(token).await? {
                None => Outcome::UnknownOperation,
                Some(op) if op.state.is_terminal() => Outcome::AlreadyFinished,
                Some(_) => Outcome::AlreadyRequested,
            })
        })
    }

    fn complete_async<'a>(
        &'a self,
        completion: &'a crate::completion::Completion,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, CompleteAsync> {
        Box::pin(async move {
            use crate::store::time::{opt_to_micros, to_micros};
            use crate::store::{AsyncState, CompleteAsync};
            let state = AsyncState::of_completion(completion);
            let now_us = to_micros(now)?;
            let mut tx = self.write_tx().await?;
            let row = sqlx::query(
                "UPDATE handler_operations SET state = $2, closed_at_us = $3, \
                 lease_owner = NULL, lease_expires_at_us = NULL \
                 WHERE token = $1 AND state = 'running' \
                 RETURNING callback_url, callback_headers",
            )
            .bind(&completion.token)
            .bind(state.as_str())
            .bind(now_us)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let Some(row) = row else {
                // Read in the write's turn: it may have finished in the write's batch.
                let op = async_by_token(&mut *tx, &completion.token).await?;
                tx.commit().await.map_err(db_error)?;
                return Ok(match op {
                    None => CompleteAsync::UnknownOperation,
                    Some(op) => CompleteAsync::AlreadyFinished(op.state),
                });
            };
            let Some(url) = row.opt_text("callback_url")? else {
                tx.commit().await.map_err(db_error)?;
                return Ok(CompleteAsync::Applied { delivery: None });
            };
            let headers = row
                .opt_text("callback_headers")?
                .unwrap_or_else(|| "{}".to_owned());
            let id = crate::id::new_v7();
            let result = completion.outcome.as_ref().ok();
            let failure = completion.outcome.as_ref().err().map(|e| e.to_failure());
            sqlx::query(
                "INSERT INTO completion_deliveries (id, token, url, headers, outcome, \
                 result_data, result_headers, failure, links, start_time_us, \
                 close_time_us, state, attempts, next_attempt_at_us, last_error, \
                 created_at_us, finished_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                 $8, $9, $10, $11, 'pending', 0, $12, NULL, $12, NULL)",
            )
            .bind(id.to_string())
            .bind(&completion.token)
            .bind(url)
            .bind(headers)
            .bind(state.as_str())
            .bind(result.map(|c| c.data.to_vec()))
            .bind(result.map(|c| headers_json(&c.headers)).transpose()?)
            .bind(failure.as_ref().map(failure_json).transpose()?)
            .bind(links_json(&completion.links)?)
            .bind(opt_to_micros(completion.start_time)?)
            .bind(opt_to_micros(completion.close_time)?)
            .bind(now_us)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(CompleteAsync::Applied { delivery: Some(id) })
        })
    }

    fn retarget_async<'a>(
        &'a self,
        token: &'a str,
        callback: &'a StoredCallback,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, RetargetAsync> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            let headers = headers_json(&callback.headers)?;
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            let changed = sqlx::query(
                "UPDATE handler_operations SET callback_url = $2, callback_headers = $3 \
                 WHERE token = $1 AND (callback_url IS NULL OR callback_headers IS NULL \
                 OR callback_url <> $2 OR callback_headers <> $3) RETURNING *",
            )
            .bind(token)
            .bind(&callback.url)
            .bind(&headers)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let Some(row) = changed else {
                // The record names this callback already (or there is none).
                drop(tx);
                let Some(op) = self.get_async(token).await? else {
                    return Ok(RetargetAsync::UnknownOperation);
                };
                let waiting = sqlx::query(
                    "SELECT id FROM completion_deliveries WHERE token = $1 \
                     AND state = 'pending'",
                )
                .bind(token)
                .fetch_optional(self.readers())
                .await
                .map_err(db_error)?;
                return Ok(match waiting {
                    None if op.state.is_terminal() => RetargetAsync::Settled(op.state),
                    _ => RetargetAsync::Unchanged,
                });
            };
            let state = async_from_row(&row)?.state;
            if !state.is_terminal() {
                tx.commit().await.map_err(db_error)?;
                return Ok(RetargetAsync::Updated);
            }
            let redirected = sqlx::query(
                "UPDATE completion_deliveries SET url = $2, headers = $3, \
                 next_attempt_at_us = $4 WHERE token = $1 AND state = 'pending' \
                 RETURNING id",
            )
            .bind(token)
            .bind(&callback.url)
            .bind(&headers)
            .bind(to_micros(now)?)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let Some(row) = redirected else {
                // Nothing waits in the outbox: the record keeps where the completion went.
                drop(tx);
                return Ok(RetargetAsync::Settled(state));
            };
            let delivery = parse_uuid(&row.text("id")?)?;
            tx.commit().await.map_err(db_error)?;
            Ok(RetargetAsync::Redirected { delivery })
        })
    }

    fn list_unfinished_async(&self) -> StoreFuture<'_, Vec<AsyncOperationRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM handler_operations_leased WHERE state = 'running' \
                 ORDER BY started_at_us, token",
            )
            .fetch_all(self.readers())
            .await
            .map_err(db_error)?;
            sorted_async(rows.iter().map(async_from_row).collect())
        })
    }

    fn claim_async<'a>(
        &'a self,
        owner: &'a str,
        now: std::time::SystemTime,
        lease: std::time::Duration,
        max: usize,
    ) -> StoreFuture<'a, Vec<AsyncOperationRecord>> {
        Box::pin(async move {
            let rows = self.claim_rows(CLAIM, owner, now, lease, max).await?;
            sorted_async(rows.iter().map(async_from_row).collect())
        })
    }

    fn renew_async<'a>(
        &'a self,
        owner: &'a str,
        now: std::time::SystemTime,
        lease: std::time::Duration,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            // One row written, whatever the number of operations.
            self.heartbeat(HEARTBEAT, owner, now, lease).await?;
            let leases: i64 = sqlx::query_scalar(LEASES)
                .bind(owner)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
            counter(leases, "leases")
        })
    }

    fn leased_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(self.owner_tokens(owner, LEASED))
    }

    fn cancel_requested_async<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(self.owner_tokens(owner, CANCEL_REQUESTED))
    }

    fn release_async<'a>(&'a self, owner: &'a str, tokens: &'a [String]) -> StoreFuture<'a, u64> {
        Box::pin(self.release_each(
            "UPDATE handler_operations SET lease_owner = NULL, \
             lease_expires_at_us = NULL WHERE token = $1 AND lease_owner = $2",
            owner,
            tokens.iter().cloned(),
        ))
    }

    fn purge_handled(&self, before: std::time::SystemTime) -> StoreFuture<'_, HandlerPurge> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            let before = to_micros(before)?;
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            let starts = sqlx::query(
                "DELETE FROM handler_starts WHERE (answer IS NOT NULL \
                 AND answered_at_us < $1) OR (answer IS NULL \
                 AND (claim_expires_at_us IS NULL OR claim_expires_at_us < $1))",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
            let operations = sqlx::query(
                "DELETE FROM handler_operations WHERE state <> 'running' \
                 AND closed_at_us < $1",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
            tx.commit().await.map_err(db_error)?;
            Ok(HandlerPurge { starts, operations })
        })
    }
}
