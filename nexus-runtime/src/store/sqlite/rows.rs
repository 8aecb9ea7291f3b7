//! Statements on a connection: prepared once per connection (`prepare_cached`), parameters
//! encoded before they reach the writer thread (as [`Value`]s), rows read back through the
//! shared decoders (`store/sql/rows.rs`).

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use super::writer::db_error;
use crate::store::StoreError;
use crate::store::sql::{RowExt, column_error};

/// The condition a finished caller's operation meets, and the one an unfinished one meets:
/// literals, so that statements are built with `concat!` at compile time (constant strings,
/// which `prepare_cached` finds without building the SQL on each call). Comparisons rather than
/// an IN list, for which SQLite would build a temporary table at every run of the statement; the
/// unfinished operations' partial index is written with the same terms (migration 6), so that
/// the queries that spell them use it.
macro_rules! finished {
    () => {
        "(state = 'succeeded' OR state = 'failed' OR state = 'canceled' OR state = 'timed_out')"
    };
}
pub(super) use finished;

/// See [`finished`].
macro_rules! unfinished {
    () => {
        "(state <> 'succeeded' AND state <> 'failed' AND state <> 'canceled' \
         AND state <> 'timed_out')"
    };
}
pub(super) use unfinished;

/// ` LIMIT ?n + 0`: a limit bound as parameter `?n`, written so that SQLite does not read its
/// value while planning. With a bare `LIMIT ?n` SQLite plans with the bound value and prepares the
/// statement again at every run with another one: the outbox's claim was prepared afresh at every
/// completion, an eighth of the writer thread's time.
macro_rules! limit_param {
    ($param:literal) => {
        concat!(" LIMIT ", $param, " + 0")
    };
}
pub(super) use limit_param;

/// Encoded parameters, `?1` first.
pub(super) type Params = Vec<Value>;

impl RowExt for Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        get(self, column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        get(self, column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        get(self, column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        get(self, column)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        get(self, column)
    }
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get(self, column)
    }
    fn boolean(&self, column: &str) -> Result<bool, StoreError> {
        get(self, column)
    }
}

/// The value of `column` in `row`.
fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, column: &str) -> Result<T, StoreError> {
    row.get(column_index(row, column)?)
        .map_err(|e| column_error(column, e))
}

std::thread_local! {
    /// Where the column after the last one looked up on this thread is.
    static NEXT_COLUMN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The index of `column` in `row`. The decoders read a row's columns mostly in the table's
/// order, so the column after the last one found is tried first; rusqlite's lookup by name
/// compares the name with every column's before it, each name's length measured anew (a fifth of
/// decoding a caller's record).
fn column_index(row: &Row<'_>, column: &str) -> Result<usize, StoreError> {
    let statement: &rusqlite::Statement<'_> = row.as_ref();
    let hint = NEXT_COLUMN.get();
    let index = if statement.column_name(hint).is_ok_and(|name| name == column) {
        hint
    } else {
        statement
            .column_index(column)
            .map_err(|e| column_error(column, e))?
    };
    NEXT_COLUMN.set(index + 1);
    Ok(index)
}

/// Runs `sql`; how many rows it changed.
pub(super) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error)?;
    let changed = statement
        .execute(params_from_iter(params.iter()))
        .map_err(db_error)?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

/// The first row of `sql`, read with `read`.
pub(super) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = statement
        .query(params_from_iter(params.iter()))
        .map_err(db_error)?;
    let first = match rows.next().map_err(db_error)? {
        Some(row) => Some(read(row)?),
        None => None,
    };
    // A statement that writes (`RETURNING`) finishes only when stepped to its end.
    while rows.next().map_err(db_error)?.is_some() {}
    Ok(first)
}

/// Every row of `sql`, each read with `read`.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = statement
        .query(params_from_iter(params.iter()))
        .map_err(db_error)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        all.push(read(row)?);
    }
    Ok(all)
}

/// Text.
pub(super) fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// Text or NULL.
pub(super) fn opt_text(s: Option<impl Into<String>>) -> Value {
    s.map_or(Value::Null, |s| Value::Text(s.into()))
}

/// A blob.
pub(super) fn blob(b: impl Into<Vec<u8>>) -> Value {
    Value::Blob(b.into())
}

/// An integer or NULL.
pub(super) fn opt_int(n: Option<i64>) -> Value {
    n.map_or(Value::Null, Value::Integer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns are found by name in any order, whatever was looked up before on the thread.
    #[test]
    fn columns_are_found_in_any_order() {
        let conn = Connection::open_in_memory().expect("open");
        let read = |order: &[&str]| -> Vec<String> {
            conn.query_row("SELECT 'a' AS a, 'b' AS b, 'c' AS c, 'd' AS d", [], |row| {
                Ok(order
                    .iter()
                    .map(|column| row.text(column).expect("column"))
                    .collect())
            })
            .expect("row")
        };
        for order in [
            ["a", "b", "c", "d"],
            ["d", "c", "b", "a"],
            ["b", "d", "a", "c"],
            ["c", "a", "d", "b"],
        ] {
            assert_eq!(read(&order), order);
        }
        let error = conn
            .query_row("SELECT 1 AS a", [], |row| Ok(row.int("b")))
            .expect("row")
            .expect_err("no such column");
        assert!(error.to_string().contains('b'), "{error}");
    }

    /// The claims run at every completion (the outbox's) or lease pass with another limit each
    /// time: each must be planned once, not again whenever the limit changes (a bare `LIMIT ?n`
    /// is; `rows::limit_param!` is not).
    #[test]
    fn claims_are_prepared_once_whatever_their_limit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut conn = Connection::open(dir.path().join("claims.db")).expect("open");
        super::super::migrate::migrate(&mut conn).expect("migrate");
        for (name, sql) in [
            ("the outbox's claim", super::super::outbox::CLAIM_DUE),
            ("the handler's claim", super::super::handler::CLAIM),
            ("the caller's claim", super::super::caller::CLAIM),
        ] {
            let mut stmt = conn.prepare(sql).expect(name);
            let count = stmt.parameter_count();
            for limit in [1_i64, 32, 7, 512] {
                // Every parameter an integer: the limit is the last one.
                let params: Vec<i64> = (1..count).map(|n| n as i64).chain([limit]).collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).expect(name);
                while rows.next().expect(name).is_some() {}
            }
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{name} was prepared again"
            );
        }
        // The form it avoids is prepared again (so the check above can fail).
        let mut bare = conn
            .prepare("SELECT id FROM completion_deliveries ORDER BY id LIMIT ?1")
            .expect("bare");
        for limit in [1_i64, 2] {
            bare.query([limit]).expect("bare").next().expect("bare");
        }
        assert!(bare.get_status(rusqlite::StatementStatus::RePrepare) > 0);
    }
}
