//! [`OutboxStore`](crate::store::OutboxStore) in SQL, for any database with the shared schema.

/// Implements `OutboxStore` for `$store` (a struct with a `pool: sqlx::Pool<$db>` field).
/// `$lock` is appended to the claim's inner `SELECT` (`"FOR UPDATE SKIP LOCKED"` or `""`).
macro_rules! impl_outbox_store {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        impl $crate::store::OutboxStore for $store {
            sql_list_deliveries!($db);

            fn claim_due_deliveries(
                &self,
                now: std::time::SystemTime,
                visibility: std::time::Duration,
                max: usize,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::Delivery>> {
                Box::pin(async move {
                    use $crate::store::sql::*;
                    use $crate::store::time::{expiry_micros, to_micros};
                    let mut w = self.write_one().await?;
                    let rows = sqlx::query(concat!(
                        "WITH picked AS MATERIALIZED (SELECT id FROM completion_deliveries \
                         WHERE state = 'pending' AND next_attempt_at_us <= $1 \
                         ORDER BY next_attempt_at_us, created_at_us, id LIMIT $3 ",
                        $lock,
                        ") UPDATE completion_deliveries SET next_attempt_at_us = $2 \
                         WHERE id IN (SELECT id FROM picked) AND state = 'pending' \
                         AND next_attempt_at_us <= $1 RETURNING *"
                    ))
                    .bind(to_micros(now)?)
                    .bind(expiry_micros(now, visibility)?)
                    .bind(limit(max))
                    .fetch_all(&mut *w)
                    .await
                    .map_err(db_error)?;
                    w.commit().await.map_err(db_error)?;
                    let mut due = rows
                        .iter()
                        .map(delivery_from_row)
                        .collect::<Result<Vec<_>, _>>()?;
                    due.sort_by(|a, b| (a.created_at, a.id).cmp(&(b.created_at, b.id)));
                    Ok(due)
                })
            }

            fn mark_delivered(
                &self,
                id: $crate::store::DeliveryId,
                now: std::time::SystemTime,
            ) -> $crate::store::StoreFuture<'_, bool> {
                Box::pin(async move {
                    use $crate::store::sql::*;
                    use $crate::store::time::to_micros;
                    let mut w = self.write_one().await?;
                    let updated = sqlx::query(
                        "UPDATE completion_deliveries SET state = 'delivered', \
                         attempts = attempts + 1, finished_at_us = $2 \
                         WHERE id = $1 AND state = 'pending'",
                    )
                    .bind(id.to_string())
                    .bind(to_micros(now)?)
                    .execute(&mut *w)
                    .await
                    .map_err(db_error)?;
                    w.commit().await.map_err(db_error)?;
                    Ok(updated.rows_affected() == 1)
                })
            }

            fn mark_retry<'a>(
                &'a self,
                delivery: &'a $crate::store::Delivery,
                next_attempt_at: std::time::SystemTime,
                error: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    use $crate::store::sql::*;
                    use $crate::store::time::to_micros;
                    let mut w = self.write_one().await?;
                    let updated = sqlx::query(
                        "UPDATE completion_deliveries SET attempts = attempts + 1, \
                         next_attempt_at_us = $2, last_error = $3 \
                         WHERE id = $1 AND state = 'pending' AND url = $4 AND headers = $5",
                    )
                    .bind(delivery.id.to_string())
                    .bind(to_micros(next_attempt_at)?)
                    .bind(error)
                    .bind(&delivery.url)
                    .bind(headers_json(&delivery.headers)?)
                    .execute(&mut *w)
                    .await
                    .map_err(db_error)?;
                    w.commit().await.map_err(db_error)?;
                    Ok(updated.rows_affected() == 1)
                })
            }

            fn mark_dead<'a>(
                &'a self,
                delivery: &'a $crate::store::Delivery,
                now: std::time::SystemTime,
                error: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    use $crate::store::sql::*;
                    use $crate::store::time::to_micros;
                    let mut w = self.write_one().await?;
                    let updated = sqlx::query(
                        "UPDATE completion_deliveries SET state = 'dead', \
                         attempts = attempts + 1, finished_at_us = $2, last_error = $3 \
                         WHERE id = $1 AND state = 'pending' AND url = $4 AND headers = $5",
                    )
                    .bind(delivery.id.to_string())
                    .bind(to_micros(now)?)
                    .bind(error)
                    .bind(&delivery.url)
                    .bind(headers_json(&delivery.headers)?)
                    .execute(&mut *w)
                    .await
                    .map_err(db_error)?;
                    w.commit().await.map_err(db_error)?;
                    Ok(updated.rows_affected() == 1)
                })
            }

            fn get_delivery(
                &self,
                id: $crate::store::DeliveryId,
            ) -> $crate::store::StoreFuture<'_, Option<$crate::store::Delivery>> {
                Box::pin(async move {
                    use $crate::store::sql::*;
                    sqlx::query("SELECT * FROM completion_deliveries WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(self.readers())
                        .await
                        .map_err(db_error)?
                        .map(|row| delivery_from_row(&row))
                        .transpose()
                })
            }

            fn list_dead_deliveries(
                &self,
                max: usize,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::Delivery>> {
                Box::pin(async move {
                    use $crate::store::sql::*;
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

            fn purge_deliveries(
                &self,
                before: std::time::SystemTime,
            ) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin(async move {
                    use $crate::store::sql::*;
                    use $crate::store::time::to_micros;
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
    };
}
