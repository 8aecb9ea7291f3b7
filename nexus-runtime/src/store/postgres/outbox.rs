//! [`OutboxStore`] on PostgreSQL.

use super::PostgresStore;
use super::listing::{push_after, push_states};
use crate::store::sql::*;
use crate::store::{Delivery, DeliveryId, DeliveryQuery, OutboxStore, StoreFuture};

/// Hides the due deliveries from other senders for the visibility, and returns them.
const CLAIM_DUE: &str = concat!(
    "WITH picked AS MATERIALIZED (SELECT id FROM completion_deliveries \
     WHERE state = 'pending' AND next_attempt_at_us <= $1 \
     ORDER BY next_attempt_at_us, created_at_us, id LIMIT $3 ",
    "FOR UPDATE SKIP LOCKED",
    ") UPDATE completion_deliveries SET next_attempt_at_us = $2 \
     WHERE id IN (SELECT id FROM picked) AND state = 'pending' \
     AND next_attempt_at_us <= $1 RETURNING *"
);

impl PostgresStore {
    /// Ends an attempt of a pending delivery with `sql` (`$1` its id, `$2` a time, `$3` the
    /// error, `$4` and `$5` its URL and headers, which must not have changed meanwhile).
    async fn mark_attempt(
        &self,
        sql: &'static str,
        delivery: &Delivery,
        at: std::time::SystemTime,
        error: &str,
    ) -> Result<bool, crate::store::StoreError> {
        self.execute_one(
            sqlx::query(sql)
                .bind(delivery.id.to_string())
                .bind(crate::store::time::to_micros(at)?)
                .bind(error)
                .bind(&delivery.url)
                .bind(headers_json(&delivery.headers)?),
        )
        .await
    }
}

impl OutboxStore for PostgresStore {
    fn list_deliveries<'a>(&'a self, query: &'a DeliveryQuery) -> StoreFuture<'a, Vec<Delivery>> {
        Box::pin(async move {
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "SELECT * FROM completion_deliveries WHERE 1 = 1",
            );
            push_states(&mut qb, "state", query.states.iter().map(|s| s.as_str()));
            if query.failed_only {
                qb.push(" AND last_error IS NOT NULL AND state <> 'delivered'");
            }
            push_after(&mut qb, "created_at_us", "id", query.after.as_ref())?;
            qb.push(" ORDER BY created_at_us, id LIMIT ");
            qb.push_bind(limit(crate::store::listing::page_size(query.limit)));
            let rows = qb
                .build()
                .fetch_all(self.readers())
                .await
                .map_err(db_error)?;
            let mut page = rows
                .iter()
                .map(delivery_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            page.sort_by_key(|d| (d.created_at, d.id));
            Ok(page)
        })
    }

    fn redeliver(&self, id: DeliveryId, now: std::time::SystemTime) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            self.execute_one(
                sqlx::query(
                    "UPDATE completion_deliveries SET state = 'pending', \
                     next_attempt_at_us = $2, finished_at_us = NULL \
                     WHERE id = $1 AND state = 'dead'",
                )
                .bind(id.to_string())
                .bind(to_micros(now)?),
            )
            .await
        })
    }

    fn claim_due_deliveries(
        &self,
        now: std::time::SystemTime,
        visibility: std::time::Duration,
        max: usize,
    ) -> StoreFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            use crate::store::time::{expiry_micros, to_micros};
            let rows = self
                .write_rows(
                    sqlx::query(CLAIM_DUE)
                        .bind(to_micros(now)?)
                        .bind(expiry_micros(now, visibility)?)
                        .bind(limit(max)),
                )
                .await?;
            let mut due = rows
                .iter()
                .map(delivery_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            due.sort_by_key(|d| (d.created_at, d.id));
            Ok(due)
        })
    }

    fn mark_delivered(&self, id: DeliveryId, now: std::time::SystemTime) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            self.execute_one(
                sqlx::query(
                    "UPDATE completion_deliveries SET state = 'delivered', \
                     attempts = attempts + 1, finished_at_us = $2 \
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id.to_string())
                .bind(to_micros(now)?),
            )
            .await
        })
    }

    fn mark_retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        next_attempt_at: std::time::SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.mark_attempt(
            "UPDATE completion_deliveries SET attempts = attempts + 1, \
             next_attempt_at_us = $2, last_error = $3 \
             WHERE id = $1 AND state = 'pending' AND url = $4 AND headers = $5",
            delivery,
            next_attempt_at,
            error,
        ))
    }

    fn mark_dead<'a>(
        &'a self,
        delivery: &'a Delivery,
        now: std::time::SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.mark_attempt(
            "UPDATE completion_deliveries SET state = 'dead', \
             attempts = attempts + 1, finished_at_us = $2, last_error = $3 \
             WHERE id = $1 AND state = 'pending' AND url = $4 AND headers = $5",
            delivery,
            now,
            error,
        ))
    }

    fn get_delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            sqlx::query("SELECT * FROM completion_deliveries WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.readers())
                .await
                .map_err(db_error)?
                .map(|row| delivery_from_row(&row))
                .transpose()
        })
    }

    fn list_dead_deliveries(&self, max: usize) -> StoreFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM completion_deliveries WHERE state = 'dead' \
                 ORDER BY finished_at_us DESC, id DESC LIMIT $1",
            )
            .bind(limit(max))
            .fetch_all(self.readers())
            .await
            .map_err(db_error)?;
            let mut dead = rows
                .iter()
                .map(delivery_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            dead.sort_by_key(|d| std::cmp::Reverse((d.finished_at, d.id)));
            Ok(dead)
        })
    }

    fn purge_deliveries(&self, before: std::time::SystemTime) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            use crate::store::time::to_micros;
            Ok(sqlx::query(
                "DELETE FROM completion_deliveries WHERE state <> 'pending' \
                 AND finished_at_us < $1",
            )
            .bind(to_micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected())
        })
    }
}
