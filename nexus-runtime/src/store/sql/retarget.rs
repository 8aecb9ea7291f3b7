//! [`HandlerStore::retarget_async`](crate::store::HandlerStore::retarget_async) in SQL: a method
//! of `impl_handler_store!`, kept apart to keep that file short.

/// Expands to the `retarget_async` method of `HandlerStore`, for a struct with a
/// `pool: sqlx::Pool<_>` field.
///
/// One transaction. First the operation's record (which serializes with `complete_async` on the
/// row): running, that is all; finished, its pending delivery is redirected too (conditional on
/// `state = 'pending'`, so it serializes with the sender's bookkeeping, whose `mark_retry` and
/// `mark_dead` then no longer match the redirected row), or, with none waiting, the transaction is
/// rolled back.
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
    };
}
