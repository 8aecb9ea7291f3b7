//! [`CallerStore`] on PostgreSQL: claims skip the rows other replicas hold locked (`FOR UPDATE SKIP
//! LOCKED`), picked in a `MATERIALIZED` CTE so that a claim takes at most its limit.

use super::PostgresStore;
use super::listing::{push_after, push_states};
use crate::store::sql::*;
use crate::store::{
    AppliedCompletion, CallerQuery, CallerRecord, CallerStore, CancelRequestOutcome,
    CompletionOutcome, InsertOutcome, OperationId, RequestKey, StoreError, StoreFuture,
};

/// Operation `id`, read through `exec` (the pool, or a write's connection when what it looks for
/// may have changed in the write's transaction).
async fn caller_by_id<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: OperationId,
) -> Result<Option<CallerRecord>, StoreError> {
    sqlx::query("SELECT * FROM caller_operations_leased WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(exec)
        .await
        .map_err(db_error)?
        .map(|row| caller_from_row(&row))
        .transpose()
}

/// The operation recorded with request key `key`, read through `exec`.
async fn caller_by_key<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    key: &RequestKey,
) -> Result<Option<CallerRecord>, StoreError> {
    sqlx::query(
        "SELECT * FROM caller_operations_leased WHERE endpoint = $1 AND service = $2 \
         AND operation = $3 AND request_id = $4",
    )
    .bind(&key.endpoint)
    .bind(&key.service)
    .bind(&key.operation)
    .bind(&key.request_id)
    .fetch_optional(exec)
    .await
    .map_err(db_error)?
    .map(|row| caller_from_row(&row))
    .transpose()
}

/// Leases the oldest unfinished operations nobody holds (or whose lease expired): see
/// [`PostgresStore::claim_rows`].
/// Whether the lease of a `caller_operations` row `c` is free at `$3`: nobody holds it, or both
/// its own expiry and its owner's heartbeat are past.
macro_rules! lease_free {
    () => {
        "(c.lease_owner IS NULL OR (c.lease_expires_at_us <= $3 AND NOT EXISTS \
         (SELECT 1 FROM caller_owners o WHERE o.owner = c.lease_owner \
         AND o.expires_at_us > $3)))"
    };
}

const CLAIM: &str = concat!(
    "WITH picked AS MATERIALIZED (SELECT c.id FROM caller_operations c WHERE ",
    lease_free!(),
    " AND c.state NOT IN ",
    "('succeeded', 'failed', 'canceled', 'timed_out')",
    " ORDER BY c.scheduled_at_us, c.id LIMIT $4 ",
    "FOR UPDATE OF c SKIP LOCKED",
    ") UPDATE caller_operations c SET lease_owner = $1, \
     lease_expires_at_us = $2, version = c.version + 1 \
     WHERE c.id IN (SELECT id FROM picked) AND ",
    lease_free!(),
    " AND c.state NOT IN ",
    "('succeeded', 'failed', 'canceled', 'timed_out')",
    " RETURNING c.*"
);

/// An owner's heartbeat (`$1`, until `$2`): what keeps every lease it holds live.
const HEARTBEAT: &str = crate::store::sql::heartbeat_sql!("caller_owners", "$1", "$2");

/// The unfinished operations an owner (`$1`) holds a lease on.
const LEASED: &str = concat!(
    "SELECT id FROM caller_operations WHERE lease_owner = $1 AND state NOT IN ",
    "('succeeded', 'failed', 'canceled', 'timed_out')"
);

impl CallerStore for PostgresStore {
    fn list_operations<'a>(&'a self, query: &'a CallerQuery) -> StoreFuture<'a, Vec<CallerRecord>> {
        Box::pin(async move {
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "SELECT * FROM caller_operations_leased WHERE 1 = 1",
            );
            push_states(&mut qb, "state", query.states.iter().map(|s| s.as_str()));
            if let Some(endpoint) = &query.endpoint {
                qb.push(" AND endpoint = ");
                qb.push_bind(endpoint.clone());
            }
            if let Some(service) = &query.service {
                qb.push(" AND service = ");
                qb.push_bind(service.clone());
            }
            push_after(&mut qb, "scheduled_at_us", "id", query.after.as_ref())?;
            qb.push(" ORDER BY scheduled_at_us, id LIMIT ");
            qb.push_bind(limit(crate::store::listing::page_size(query.limit)));
            let rows = qb
                .build()
                .fetch_all(self.readers())
                .await
                .map_err(db_error)?;
            sorted_records(rows.iter().map(caller_from_row).collect())
        })
    }
    fn list_recent_operations(&self, max: usize) -> StoreFuture<'_, Vec<CallerRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM caller_operations_leased \
                 ORDER BY scheduled_at_us DESC, id DESC LIMIT $1",
            )
            .bind(limit(crate::store::listing::page_size(max)))
            .fetch_all(self.readers())
            .await
            .map_err(db_error)?;
            let mut records = rows
                .iter()
                .map(caller_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            records.sort_by_key(|r| std::cmp::Reverse((r.scheduled_at, r.id)));
            Ok(records)
        })
    }

    fn insert<'a>(&'a self, record: &'a CallerRecord) -> StoreFuture<'a, InsertOutcome> {
        Box::pin(async move {
            use crate::store::time::{opt_to_micros, to_micros};
            let r = record;
            let d = &r.deadlines;
            let mut w = self.write_one().await?;
            let inserted = sqlx::query(
                "INSERT INTO caller_operations (id, endpoint, service, operation, \
                 request_id, input_data, input_headers, options, state, version, attempt, \
                 next_attempt_at_us, last_failure, target, token, start_links, \
                 result_data, result_headers, error, completion_links, \
                 cancel_requested_at_us, scheduled_at_us, started_at_us, closed_at_us, \
                 schedule_to_close_deadline_us, schedule_to_start_deadline_us, \
                 start_to_close_deadline_us, lease_owner, lease_expires_at_us, \
                 callback_secret) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, \
                 $29, $30) \
                 ON CONFLICT (endpoint, service, operation, request_id) DO NOTHING",
            )
            .bind(r.id.to_string())
            .bind(&r.endpoint)
            .bind(&r.service)
            .bind(&r.operation)
            .bind(&r.request_id)
            .bind(r.input.data.to_vec())
            .bind(headers_json(&r.input.headers)?)
            .bind(to_json(&r.options)?)
            .bind(r.state.as_str())
            .bind(version_param(r.version)?)
            .bind(i64::from(r.attempt))
            .bind(opt_to_micros(r.next_attempt_at)?)
            .bind(r.last_failure.as_deref().map(failure_json).transpose()?)
            .bind(r.target.as_deref())
            .bind(r.token.as_deref())
            .bind(links_json(&r.start_links)?)
            .bind(r.result.as_ref().map(|c| c.data.to_vec()))
            .bind(
                r.result
                    .as_ref()
                    .map(|c| headers_json(&c.headers))
                    .transpose()?,
            )
            .bind(r.error.as_deref().map(failure_json).transpose()?)
            .bind(links_json(&r.completion_links)?)
            .bind(opt_to_micros(r.cancel_requested_at)?)
            .bind(to_micros(r.scheduled_at)?)
            .bind(opt_to_micros(r.started_at)?)
            .bind(opt_to_micros(r.closed_at)?)
            .bind(opt_to_micros(d.schedule_to_close)?)
            .bind(opt_to_micros(d.schedule_to_start)?)
            .bind(opt_to_micros(d.start_to_close)?)
            .bind(r.lease.as_ref().map(|l| l.owner.as_str()))
            .bind(opt_to_micros(r.lease.as_ref().map(|l| l.expires_at))?)
            .bind(r.callback_secret.as_ref().map(|s| s.expose()))
            .execute(&mut *w)
            .await
            .map_err(|e| match db_error(e) {
                StoreError::Duplicate(m) => StoreError::Duplicate(format!(
                    "an operation with id `{}` exists already ({m})",
                    r.id
                )),
                e => e,
            })?;
            if inserted.rows_affected() == 1 {
                w.commit().await.map_err(db_error)?;
                return Ok(InsertOutcome::Inserted);
            }
            // Read in the write's turn: the conflicting insert may be in its batch.
            let existing = caller_by_key(&mut *w, &r.request_key()).await?;
            w.commit().await.map_err(db_error)?;
            existing
                .map(|e| InsertOutcome::Exists(Box::new(e)))
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "request id `{}` conflicted, but its operation is gone",
                        r.request_id
                    ))
                })
        })
    }

    fn get(&self, id: OperationId) -> StoreFuture<'_, Option<CallerRecord>> {
        Box::pin(async move { caller_by_id(self.readers(), id).await })
    }

    fn find_by_request_id<'a>(
        &'a self,
        key: &'a RequestKey,
    ) -> StoreFuture<'a, Option<CallerRecord>> {
        Box::pin(async move { caller_by_key(self.readers(), key).await })
    }

    fn list_unfinished(&self) -> StoreFuture<'_, Vec<CallerRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT * FROM caller_operations_leased WHERE state NOT IN ",
                "('succeeded', 'failed', 'canceled', 'timed_out')",
                " ORDER BY scheduled_at_us, id"
            ))
            .fetch_all(self.readers())
            .await
            .map_err(db_error)?;
            sorted_records(rows.iter().map(caller_from_row).collect())
        })
    }

    fn update<'a>(&'a self, record: &'a mut CallerRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            use crate::store::time::opt_to_micros;
            let r = &*record;
            let d = &r.deadlines;
            let mut w = self.write_one().await?;
            let row = sqlx::query(concat!(
                "UPDATE caller_operations SET state = $3, version = version + 1, \
                 attempt = $4, next_attempt_at_us = $5, last_failure = $6, target = $7, \
                 token = $8, start_links = $9, result_data = $10, result_headers = $11, \
                 error = $12, completion_links = $13, cancel_requested_at_us = $14, \
                 started_at_us = $15, closed_at_us = $16, \
                 schedule_to_close_deadline_us = $17, \
                 schedule_to_start_deadline_us = $18, start_to_close_deadline_us = $19, \
                 lease_owner = CASE WHEN $20 THEN NULL ELSE lease_owner END, \
                 lease_expires_at_us = CASE WHEN $20 THEN NULL ELSE lease_expires_at_us END \
                 WHERE id = $1 AND version = $2 AND state NOT IN ",
                "('succeeded', 'failed', 'canceled', 'timed_out')",
                " RETURNING *, (SELECT o.expires_at_us FROM caller_owners o \
                 WHERE o.owner = caller_operations.lease_owner) AS owner_expires_at_us"
            ))
            .bind(r.id.to_string())
            .bind(version_param(r.version)?)
            .bind(r.state.as_str())
            .bind(i64::from(r.attempt))
            .bind(opt_to_micros(r.next_attempt_at)?)
            .bind(r.last_failure.as_deref().map(failure_json).transpose()?)
            .bind(r.target.as_deref())
            .bind(r.token.as_deref())
            .bind(links_json(&r.start_links)?)
            .bind(r.result.as_ref().map(|c| c.data.to_vec()))
            .bind(
                r.result
                    .as_ref()
                    .map(|c| headers_json(&c.headers))
                    .transpose()?,
            )
            .bind(r.error.as_deref().map(failure_json).transpose()?)
            .bind(links_json(&r.completion_links)?)
            .bind(opt_to_micros(r.cancel_requested_at)?)
            .bind(opt_to_micros(r.started_at)?)
            .bind(opt_to_micros(r.closed_at)?)
            .bind(opt_to_micros(d.schedule_to_close)?)
            .bind(opt_to_micros(d.schedule_to_start)?)
            .bind(opt_to_micros(d.start_to_close)?)
            .bind(r.state.is_terminal())
            .fetch_optional(&mut *w)
            .await
            .map_err(db_error)?;
            w.commit().await.map_err(db_error)?;
            let Some(row) = row else {
                return Ok(false);
            };
            *record = caller_from_row(&row)?;
            // The lease as it stands: its own expiry, or its owner's heartbeat if later.
            let heartbeat: Option<i64> = row.opt_int("owner_expires_at_us")?;
            if let (Some(lease), Some(heartbeat)) = (record.lease.as_mut(), heartbeat) {
                let heartbeat = crate::store::time::from_micros(heartbeat)?;
                lease.expires_at = lease.expires_at.max(heartbeat);
            }
            Ok(true)
        })
    }

    fn request_cancel(
        &self,
        id: OperationId,
        at: std::time::SystemTime,
    ) -> StoreFuture<'_, CancelRequestOutcome> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            use CancelRequestOutcome as Outcome;
            let mut w = self.write_one().await?;
            let updated = sqlx::query(concat!(
                "UPDATE caller_operations SET cancel_requested_at_us = $2, \
                 version = version + 1 \
                 WHERE id = $1 AND cancel_requested_at_us IS NULL AND state NOT IN ",
                "('succeeded', 'failed', 'canceled', 'timed_out')"
            ))
            .bind(id.to_string())
            .bind(to_micros(at)?)
            .execute(&mut *w)
            .await
            .map_err(db_error)?;
            let outcome = if updated.rows_affected() == 1 {
                Outcome::Requested
            } else {
                match caller_by_id(&mut *w, id).await? {
                    None => Outcome::UnknownOperation,
                    Some(r) if r.state.is_terminal() => Outcome::AlreadyFinished,
                    Some(_) => Outcome::AlreadyRequested,
                }
            };
            w.commit().await.map_err(db_error)?;
            Ok(outcome)
        })
    }

    fn record_completion<'a>(
        &'a self,
        id: OperationId,
        completion: &'a crate::completion::Completion,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, CompletionOutcome> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            use CompletionOutcome as Outcome;
            let token = Some(completion.token.as_str()).filter(|t| !t.is_empty());
            let result = completion.outcome.as_ref().ok();
            let error = completion.outcome.as_ref().err().map(|e| e.to_failure());
            let mut w = self.write_one().await?;
            let row = sqlx::query(concat!(
                "UPDATE caller_operations SET state = $2, version = version + 1, \
                 token = COALESCE(token, $3), result_data = $4, result_headers = $5, \
                 error = $6, completion_links = $7, closed_at_us = $8, \
                 next_attempt_at_us = NULL, lease_owner = NULL, \
                 lease_expires_at_us = NULL \
                 WHERE id = $1 AND (token IS NULL OR $3 IS NULL OR token = $3) \
                 AND state NOT IN ",
                "('succeeded', 'failed', 'canceled', 'timed_out')",
                " RETURNING version, token"
            ))
            .bind(id.to_string())
            .bind(completion.final_state().as_str())
            .bind(token)
            .bind(result.map(|c| c.data.to_vec()))
            .bind(result.map(|c| headers_json(&c.headers)).transpose()?)
            .bind(error.as_ref().map(failure_json).transpose()?)
            .bind(links_json(&completion.links)?)
            .bind(to_micros(now)?)
            .fetch_optional(&mut *w)
            .await
            .map_err(db_error)?;
            let outcome = match row {
                Some(row) => Outcome::Applied(AppliedCompletion {
                    version: crate::store::sql::counter(row.int("version")?, "version")?,
                    token: row.opt_text("token")?,
                }),
                None => match caller_by_id(&mut *w, id).await? {
                    None => Outcome::UnknownOperation,
                    Some(r) if r.state.is_terminal() => Outcome::AlreadyFinished(r.state),
                    Some(r) => Outcome::TokenMismatch {
                        expected: r.token.unwrap_or_default(),
                    },
                },
            };
            w.commit().await.map_err(db_error)?;
            Ok(outcome)
        })
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: std::time::SystemTime,
        lease: std::time::Duration,
        max: usize,
    ) -> StoreFuture<'a, Vec<CallerRecord>> {
        Box::pin(async move {
            let rows = self.claim_rows(CLAIM, owner, now, lease, max).await?;
            sorted_records(rows.iter().map(caller_from_row).collect())
        })
    }

    fn renew<'a>(
        &'a self,
        owner: &'a str,
        now: std::time::SystemTime,
        lease: std::time::Duration,
    ) -> StoreFuture<'a, Vec<OperationId>> {
        Box::pin(async move {
            // One row written, whatever the number of operations.
            self.heartbeat(HEARTBEAT, owner, now, lease).await?;
            let rows = sqlx::query(LEASED)
                .bind(owner)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
            let mut ids = rows
                .iter()
                .map(|row| parse_uuid(&row.text("id")?))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            Ok(ids)
        })
    }

    fn release<'a>(&'a self, owner: &'a str, ids: &'a [OperationId]) -> StoreFuture<'a, u64> {
        Box::pin(self.release_each(
            "UPDATE caller_operations SET lease_owner = NULL, \
             lease_expires_at_us = NULL WHERE id = $1 AND lease_owner = $2",
            owner,
            ids.iter().map(ToString::to_string),
        ))
    }

    fn release_all<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            Ok(sqlx::query(
                "UPDATE caller_operations SET lease_owner = NULL, \
                 lease_expires_at_us = NULL WHERE lease_owner = $1",
            )
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected())
        })
    }

    fn purge_finished(&self, closed_before: std::time::SystemTime) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            Ok(sqlx::query(concat!(
                "DELETE FROM caller_operations WHERE closed_at_us < $1 AND state IN ",
                "('succeeded', 'failed', 'canceled', 'timed_out')"
            ))
            .bind(to_micros(closed_before)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected())
        })
    }
}
