//! [`OutboxStore`] on SQLite, and the retargeting of a completion (the operation's record or its
//! delivery waiting in the outbox).

use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use rusqlite::types::Value;

use super::SqliteStore;
use super::rows::{execute, limit_param, query_all, query_opt, text};
use crate::store::sql::{RowExt as _, delivery_from_row, headers_json, limit, parse_uuid};
use crate::store::time::{expiry_micros, to_micros};
use crate::store::{
    AsyncState, Delivery, DeliveryId, DeliveryQuery, OutboxStore, RetargetAsync, StoreError,
    StoreFuture,
};

/// Moves the completion of operation `?1` to callback URL `?2` with headers `?3` (`?4`: now), in
/// the writer's transaction. The operation's record is read first: unknown, or already naming
/// this callback, nothing changes; running, its record changes; finished, its delivery waiting
/// in the outbox is redirected (due at once) and its record with it, or, with none waiting,
/// nothing changes (the record keeps where the completion went).
pub(super) fn retarget(conn: &Connection, params: &[Value]) -> Result<RetargetAsync, StoreError> {
    let token = &params[..1];
    let found = query_opt(
        conn,
        "SELECT state, callback_url, callback_headers FROM handler_operations WHERE token = ?1",
        token,
        |row| {
            Ok((
                row.text("state")?,
                row.opt_text("callback_url")?,
                row.opt_text("callback_headers")?,
            ))
        },
    )?;
    let Some((state, url, headers)) = found else {
        return Ok(RetargetAsync::UnknownOperation);
    };
    let state = AsyncState::parse(&state)
        .ok_or_else(|| StoreError::corrupt(format!("unknown async state `{state}`")))?;
    let same = matches!((&params[1], url), (Value::Text(new), Some(old)) if *new == old)
        && matches!((&params[2], headers), (Value::Text(new), Some(old)) if *new == old);
    const MOVE_RECORD: &str =
        "UPDATE handler_operations SET callback_url = ?2, callback_headers = ?3 WHERE token = ?1";
    if same {
        let waiting = query_opt(
            conn,
            "SELECT id FROM completion_deliveries WHERE token = ?1 AND state = 'pending'",
            token,
            |_| Ok(()),
        )?;
        return Ok(match waiting {
            None if state.is_terminal() => RetargetAsync::Settled(state),
            _ => RetargetAsync::Unchanged,
        });
    }
    if !state.is_terminal() {
        execute(conn, MOVE_RECORD, &params[..3])?;
        return Ok(RetargetAsync::Updated);
    }
    let redirected = query_opt(
        conn,
        "UPDATE completion_deliveries SET url = ?2, headers = ?3, next_attempt_at_us = ?4 \
         WHERE token = ?1 AND state = 'pending' RETURNING id",
        params,
        |row| parse_uuid(&row.text("id")?),
    )?;
    let Some(delivery) = redirected else {
        return Ok(RetargetAsync::Settled(state));
    };
    execute(conn, MOVE_RECORD, &params[..3])?;
    Ok(RetargetAsync::Redirected { delivery })
}

/// Deliveries oldest first, then by id.
fn sorted(deliveries: Result<Vec<Delivery>, StoreError>) -> Result<Vec<Delivery>, StoreError> {
    let mut deliveries = deliveries?;
    deliveries.sort_by_key(|d| (d.created_at, d.id));
    Ok(deliveries)
}

/// Takes the deliveries due at `?1`, oldest due first, at most `?3`, hiding them until `?2`.
pub(super) const CLAIM_DUE: &str = concat!(
    "UPDATE completion_deliveries SET next_attempt_at_us = ?2 \
     WHERE id IN (SELECT id FROM completion_deliveries \
     WHERE state = 'pending' AND next_attempt_at_us <= ?1 \
     ORDER BY next_attempt_at_us, created_at_us, id",
    limit_param!("?3"),
    ") RETURNING *"
);

impl OutboxStore for SqliteStore {
    fn claim_due_deliveries(
        &self,
        now: SystemTime,
        visibility: Duration,
        max: usize,
    ) -> StoreFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            let params = vec![
                Value::Integer(to_micros(now)?),
                Value::Integer(expiry_micros(now, visibility)?),
                Value::Integer(limit(max)),
            ];
            // Answered as soon as it ran, before its batch commits: the deliveries it takes were
            // on disk already, and a claim lost with its batch (a fault, or the process killed
            // before the commit) leaves them due as they were, to be claimed and sent again: at
            // least once, as any delivery. Waiting for the commit would put one more flush
            // between every completion and its delivery.
            sorted(
                self.write_early(
                    move |conn| query_all(conn, CLAIM_DUE, &params, |row| delivery_from_row(row)),
                    |_| true,
                )
                .await,
            )
        })
    }

    fn mark_delivered(&self, id: DeliveryId, now: SystemTime) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let params = vec![text(id.to_string()), Value::Integer(to_micros(now)?)];
            self.write(move |conn| {
                execute(
                    conn,
                    "UPDATE completion_deliveries SET state = 'delivered', \
                     attempts = attempts + 1, finished_at_us = ?2 \
                     WHERE id = ?1 AND state = 'pending'",
                    &params,
                )
                .map(|n| n == 1)
            })
            .await
        })
    }

    fn mark_retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        next_attempt_at: SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let params = vec![
                text(delivery.id.to_string()),
                Value::Integer(to_micros(next_attempt_at)?),
                text(error),
                text(delivery.url.as_str()),
                text(headers_json(&delivery.headers)?),
            ];
            self.write(move |conn| {
                execute(
                    conn,
                    "UPDATE completion_deliveries SET attempts = attempts + 1, \
                     next_attempt_at_us = ?2, last_error = ?3 \
                     WHERE id = ?1 AND state = 'pending' AND url = ?4 AND headers = ?5",
                    &params,
                )
                .map(|n| n == 1)
            })
            .await
        })
    }

    fn mark_dead<'a>(
        &'a self,
        delivery: &'a Delivery,
        now: SystemTime,
        error: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let params = vec![
                text(delivery.id.to_string()),
                Value::Integer(to_micros(now)?),
                text(error),
                text(delivery.url.as_str()),
                text(headers_json(&delivery.headers)?),
            ];
            self.write(move |conn| {
                execute(
                    conn,
                    "UPDATE completion_deliveries SET state = 'dead', \
                     attempts = attempts + 1, finished_at_us = ?2, last_error = ?3 \
                     WHERE id = ?1 AND state = 'pending' AND url = ?4 AND headers = ?5",
                    &params,
                )
                .map(|n| n == 1)
            })
            .await
        })
    }

    fn get_delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            let params = vec![text(id.to_string())];
            self.read(move |conn| {
                query_opt(
                    conn,
                    "SELECT * FROM completion_deliveries WHERE id = ?1",
                    &params,
                    |row| delivery_from_row(row),
                )
            })
            .await
        })
    }

    fn list_dead_deliveries(&self, max: usize) -> StoreFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            let params = vec![Value::Integer(limit(max))];
            let mut dead = self
                .read(move |conn| {
                    query_all(
                        conn,
                        concat!(
                            "SELECT * FROM completion_deliveries WHERE state = 'dead' \
                             ORDER BY finished_at_us DESC, id DESC",
                            limit_param!("?1")
                        ),
                        &params,
                        |row| delivery_from_row(row),
                    )
                })
                .await?;
            dead.sort_by_key(|d| std::cmp::Reverse((d.finished_at, d.id)));
            Ok(dead)
        })
    }

    fn purge_deliveries(&self, before: SystemTime) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let params = vec![Value::Integer(to_micros(before)?)];
            self.write(move |conn| {
                execute(
                    conn,
                    "DELETE FROM completion_deliveries WHERE state <> 'pending' \
                     AND finished_at_us < ?1",
                    &params,
                )
            })
            .await
        })
    }

    fn list_deliveries<'a>(&'a self, query: &'a DeliveryQuery) -> StoreFuture<'a, Vec<Delivery>> {
        Box::pin(async move {
            let (sql, params) = super::listing::deliveries(query)?;
            sorted(
                self.read(move |conn| query_all(conn, &sql, &params, |row| delivery_from_row(row)))
                    .await,
            )
        })
    }

    fn redeliver(&self, id: DeliveryId, now: SystemTime) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let params = vec![text(id.to_string()), Value::Integer(to_micros(now)?)];
            self.write(move |conn| {
                execute(
                    conn,
                    "UPDATE completion_deliveries SET state = 'pending', \
                     next_attempt_at_us = ?2, finished_at_us = NULL \
                     WHERE id = ?1 AND state = 'dead'",
                    &params,
                )
                .map(|n| n == 1)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::store::{OutboxStore as _, StoreError};

    use super::super::SqliteStore;
    use super::super::writer::db_error;

    /// The outbox's claim is answered before its batch commits; should the batch then fail, the
    /// delivery is due again as it was, and the next claim takes it (sent at least once).
    #[tokio::test]
    async fn a_claim_lost_with_its_batch_leaves_the_delivery_due() {
        let fault = || StoreError::Unavailable {
            message: "a fault".into(),
            source: None,
        };

        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open_in_dir(dir.path()).await.expect("open");
        let writer = store.inner.writer.clone();
        writer
            .direct(|conn| {
                conn.execute(
                    "INSERT INTO completion_deliveries (id, token, url, headers, outcome, \
                     result_data, result_headers, links, state, attempts, next_attempt_at_us, \
                     created_at_us) VALUES ('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 't1', \
                     'http://caller.test/cb', '{}', 'succeeded', X'6e756c6c', '{}', '[]', \
                     'pending', 0, 1000, 1000)",
                    [],
                )
                .map_err(db_error)
            })
            .await
            .expect("a delivery");
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1);
        // Holds the writer thread, so that the claim and a failing write share one batch.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hold = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .direct(move |_| held.recv().map_err(|_| fault()))
                    .await
            }
        });
        tokio::task::yield_now().await;
        let claim = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .claim_due_deliveries(now, Duration::from_secs(60), 8)
                    .await
            }
        });
        tokio::task::yield_now().await;
        let failing = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(move |_| -> Result<(), StoreError> { Err(fault()) })
                    .await
            }
        });
        tokio::task::yield_now().await;
        release.send(()).expect("release");
        hold.await.expect("hold").expect("held");
        let claimed = claim.await.expect("claim").expect("claimed");
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        assert!(failing.await.expect("failing").is_err());
        let again = store
            .claim_due_deliveries(now, Duration::from_secs(60), 8)
            .await
            .expect("claimed again");
        assert_eq!(
            again.len(),
            1,
            "the lost claim left the delivery due: {again:?}"
        );
        assert_eq!(again[0].id, claimed[0].id);
    }
}
