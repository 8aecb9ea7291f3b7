//! The listing queries on SQLite: filters as bound parameters, the keyset condition and order of
//! the memory store's (time, then key).

use rusqlite::types::Value;

use super::rows::text;
use crate::store::listing::page_size;
use crate::store::sql::limit;
use crate::store::{AsyncQuery, CallerQuery, Cursor, DeliveryQuery, StoreError};

/// A statement being built, with its parameters.
struct Builder {
    sql: String,
    params: Vec<Value>,
}

impl Builder {
    fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            params: Vec::new(),
        }
    }

    /// Appends a placeholder bound to `value`.
    fn bind(&mut self, value: Value) {
        self.params.push(value);
        self.sql.push_str(&format!("?{}", self.params.len()));
    }

    /// ` AND {column} = ?` for a filter that is set.
    fn equals(&mut self, column: &str, value: Option<&String>) {
        if let Some(value) = value {
            self.sql.push_str(&format!(" AND {column} = "));
            self.bind(text(value.as_str()));
        }
    }

    /// ` AND {column} IN (…)` for a non-empty states filter.
    fn states<'s>(&mut self, column: &str, states: impl ExactSizeIterator<Item = &'s str>) {
        if states.len() == 0 {
            return;
        }
        self.sql.push_str(&format!(" AND {column} IN ("));
        for (i, state) in states.enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(text(state));
        }
        self.sql.push(')');
    }

    /// The keyset condition: after `after`, by `time` then `key`.
    fn after(&mut self, time: &str, key: &str, after: Option<&Cursor>) -> Result<(), StoreError> {
        if let Some(after) = after {
            let micros = after.micros()?;
            self.sql.push_str(&format!(" AND ({time} > "));
            self.bind(Value::Integer(micros));
            self.sql.push_str(&format!(" OR ({time} = "));
            self.bind(Value::Integer(micros));
            self.sql.push_str(&format!(" AND {key} > "));
            self.bind(text(after.key.as_str()));
            self.sql.push_str("))");
        }
        Ok(())
    }

    /// The order and the page size.
    fn page(mut self, order: &str, asked: usize) -> (String, Vec<Value>) {
        self.sql.push_str(&format!(" ORDER BY {order} LIMIT "));
        self.bind(Value::Integer(limit(page_size(asked))));
        (self.sql, self.params)
    }
}

/// `CallerStore::list_operations`.
pub(super) fn caller(query: &CallerQuery) -> Result<(String, Vec<Value>), StoreError> {
    let mut q = Builder::new("SELECT * FROM caller_operations_leased WHERE 1 = 1");
    q.states("state", query.states.iter().map(|s| s.as_str()));
    q.equals("endpoint", query.endpoint.as_ref());
    q.equals("service", query.service.as_ref());
    q.after("scheduled_at_us", "id", query.after.as_ref())?;
    Ok(q.page("scheduled_at_us, id", query.limit))
}

/// `HandlerStore::list_async`.
pub(super) fn operations(query: &AsyncQuery) -> Result<(String, Vec<Value>), StoreError> {
    let mut q = Builder::new("SELECT * FROM handler_operations_leased WHERE 1 = 1");
    q.states("state", query.states.iter().map(|s| s.as_str()));
    q.equals("service", query.service.as_ref());
    q.after("started_at_us", "token", query.after.as_ref())?;
    Ok(q.page("started_at_us, token", query.limit))
}

/// `OutboxStore::list_deliveries`.
pub(super) fn deliveries(query: &DeliveryQuery) -> Result<(String, Vec<Value>), StoreError> {
    let mut q = Builder::new("SELECT * FROM completion_deliveries WHERE 1 = 1");
    q.states("state", query.states.iter().map(|s| s.as_str()));
    if query.failed_only {
        q.sql
            .push_str(" AND last_error IS NOT NULL AND state <> 'delivered'");
    }
    q.after("created_at_us", "id", query.after.as_ref())?;
    Ok(q.page("created_at_us, id", query.limit))
}
