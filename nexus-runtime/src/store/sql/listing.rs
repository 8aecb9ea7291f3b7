//! Listing in SQL: the listing methods of the store traits, as macros the `impl_*_store!` macros
//! expand inside their impl blocks (`$db` is the database). Filters are bound parameters; the
//! order and the keyset condition follow the memory store's (time, then key).

/// Appends ` AND {column} IN (…)` for a non-empty states filter to query builder `$qb`.
macro_rules! push_states {
    ($qb:expr, $column:literal, $states:expr) => {
        if !$states.is_empty() {
            $qb.push(concat!(" AND ", $column, " IN ("));
            let mut names = $qb.separated(", ");
            for state in $states.iter() {
                names.push_bind(state.as_str());
            }
            $qb.push(")");
        }
    };
}

/// Appends the keyset condition (after `$after`, by time column then key column) to `$qb`.
macro_rules! push_after {
    ($qb:expr, $time:literal, $key:literal, $after:expr) => {
        if let Some(after) = $after {
            let micros = after.micros()?;
            $qb.push(concat!(" AND (", $time, " > "));
            $qb.push_bind(micros);
            $qb.push(concat!(" OR (", $time, " = "));
            $qb.push_bind(micros);
            $qb.push(concat!(" AND ", $key, " > "));
            $qb.push_bind(after.key.clone());
            $qb.push("))");
        }
    };
}

/// `CallerStore::list_operations`.
macro_rules! sql_list_caller_operations {
    ($db:ty) => {
        fn list_operations<'a>(
            &'a self,
            query: &'a $crate::store::CallerQuery,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::CallerRecord>> {
            Box::pin(async move {
                use $crate::store::sql::*;
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("SELECT * FROM caller_operations WHERE 1 = 1");
                push_states!(qb, "state", query.states);
                if let Some(endpoint) = &query.endpoint {
                    qb.push(" AND endpoint = ");
                    qb.push_bind(endpoint.clone());
                }
                if let Some(service) = &query.service {
                    qb.push(" AND service = ");
                    qb.push_bind(service.clone());
                }
                push_after!(qb, "scheduled_at_us", "id", &query.after);
                qb.push(" ORDER BY scheduled_at_us, id LIMIT ");
                qb.push_bind(limit($crate::store::listing::page_size(query.limit)));
                let rows = qb
                    .build()
                    .fetch_all(self.readers())
                    .await
                    .map_err(db_error)?;
                sorted_records(rows.iter().map(caller_from_row).collect())
            })
        }
    };
}

/// `CallerStore::list_recent_operations`.
macro_rules! sql_list_recent_operations {
    () => {
        fn list_recent_operations(
            &self,
            max: usize,
        ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::CallerRecord>> {
            Box::pin(async move {
                use $crate::store::sql::*;
                let rows = sqlx::query(
                    "SELECT * FROM caller_operations \
                     ORDER BY scheduled_at_us DESC, id DESC LIMIT $1",
                )
                .bind(limit($crate::store::listing::page_size(max)))
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
    };
}

/// `HandlerStore::list_async`.
macro_rules! sql_list_async {
    ($db:ty) => {
        fn list_async<'a>(
            &'a self,
            query: &'a $crate::store::AsyncQuery,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::AsyncOperationRecord>> {
            Box::pin(async move {
                use $crate::store::sql::*;
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("SELECT * FROM handler_operations WHERE 1 = 1");
                push_states!(qb, "state", query.states);
                if let Some(service) = &query.service {
                    qb.push(" AND service = ");
                    qb.push_bind(service.clone());
                }
                push_after!(qb, "started_at_us", "token", &query.after);
                qb.push(" ORDER BY started_at_us, token LIMIT ");
                qb.push_bind(limit($crate::store::listing::page_size(query.limit)));
                let rows = qb
                    .build()
                    .fetch_all(self.readers())
                    .await
                    .map_err(db_error)?;
                sorted_async(rows.iter().map(async_from_row).collect())
            })
        }
    };
}

/// `OutboxStore::list_deliveries` and `OutboxStore::redeliver`.
macro_rules! sql_list_deliveries {
    ($db:ty) => {
        fn list_deliveries<'a>(
            &'a self,
            query: &'a $crate::store::DeliveryQuery,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::Delivery>> {
            Box::pin(async move {
                use $crate::store::sql::*;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT * FROM completion_deliveries WHERE 1 = 1",
                );
                push_states!(qb, "state", query.states);
                if query.failed_only {
                    qb.push(" AND last_error IS NOT NULL AND state <> 'delivered'");
                }
                push_after!(qb, "created_at_us", "id", &query.after);
                qb.push(" ORDER BY created_at_us, id LIMIT ");
                qb.push_bind(limit($crate::store::listing::page_size(query.limit)));
                let rows = qb
                    .build()
                    .fetch_all(self.readers())
                    .await
                    .map_err(db_error)?;
                let mut page = rows
                    .iter()
                    .map(delivery_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                page.sort_by(|a, b| (a.created_at, a.id).cmp(&(b.created_at, b.id)));
                Ok(page)
            })
        }

        fn redeliver(
            &self,
            id: $crate::store::DeliveryId,
            now: std::time::SystemTime,
        ) -> $crate::store::StoreFuture<'_, bool> {
            Box::pin(async move {
                use $crate::store::sql::*;
                use $crate::store::time::to_micros;
                let mut w = self.write_one().await?;
                let updated = sqlx::query(
                    "UPDATE completion_deliveries SET state = 'pending', \
                     next_attempt_at_us = $2, finished_at_us = NULL \
                     WHERE id = $1 AND state = 'dead'",
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
    };
}
