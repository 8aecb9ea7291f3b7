//! [`HandlerStore::retarget_async`](crate::store::HandlerStore::retarget_async) in SQL: a method
//! of `impl_handler_store!`, kept apart to keep that file short.

/// Expands to the `retarget_async` method of `HandlerStore`, for a struct with a
/// `pool: sqlx::Pool<_>` field.
///
/// One transaction: first the running operation's record (conditional on `state = 'running'`,
/// so it serializes with `complete_async` on the row); if it had finished, its pending delivery
/// (conditional on `state = 'pending'`, so it serializes with the sender's bookkeeping, whose
/// `mark_retry`/`mark_dead` then no longer match the redirected row).
macro_rules! retarget_async_method {
    () => {
        fn retarget_async<'a>(
            &'a self,
            token: &'a str,
            callback: &'a $crate::store::StoredCallback,
            now: std::time::SystemTime,
        ) -> $crate::store::StoreFuture<'a, $crate::store::RetargetAsync> {
            Box::pin(async move {
                use $crate::store::RetargetAsync;
                use $crate::store::sql::*;
                use $crate::store::time::to_micros;
                let now_us = to_micros(now)?;
                let headers = headers_json(&callback.headers)?;
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let updated = sqlx::query(
                    "UPDATE handler_operations SET callback_url = $2, callback_headers = $3 \
                     WHERE token = $1 AND state = 'running' AND (callback_url IS NULL \
                     OR callback_headers IS NULL OR callback_url <> $2 \
                     OR callback_headers <> $3)",
                )
                .bind(token)
                .bind(&callback.url)
                .bind(&headers)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if updated.rows_affected() == 1 {
                    tx.commit().await.map_err(db_error)?;
                    return Ok(RetargetAsync::Updated);
                }
                let redirected = sqlx::query(
                    "UPDATE completion_deliveries SET url = $2, headers = $3, \
                     next_attempt_at_us = $4 WHERE token = $1 AND state = 'pending' \
                     AND (url <> $2 OR headers <> $3) RETURNING id",
                )
                .bind(token)
                .bind(&callback.url)
                .bind(&headers)
                .bind(now_us)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                if let Some(row) = redirected {
                    let delivery = parse_uuid(&row.text("id")?)?;
                    sqlx::query(
                        "UPDATE handler_operations SET callback_url = $2, \
                         callback_headers = $3 WHERE token = $1",
                    )
                    .bind(token)
                    .bind(&callback.url)
                    .bind(&headers)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)?;
                    return Ok(RetargetAsync::Redirected { delivery });
                }
                drop(tx);
                let Some(op) = self.get_async(token).await? else {
                    return Ok(RetargetAsync::UnknownOperation);
                };
                if !op.state.is_terminal() {
                    return Ok(RetargetAsync::Unchanged);
                }
                let waiting = sqlx::query(
                    "SELECT id FROM completion_deliveries WHERE token = $1 \
                     AND state = 'pending'",
                )
                .bind(token)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(match waiting {
                    Some(_) => RetargetAsync::Unchanged,
                    None => RetargetAsync::Settled(op.state),
                })
            })
        }
    };
}
